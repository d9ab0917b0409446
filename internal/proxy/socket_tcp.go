package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"apoxy.dev/apoxy/internal/hostname"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/h1"
)

// l4Conns tracks a TCP socket's spliced connections, so closing the socket can drain them.
type l4Conns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func (t *l4Conns) add(cs ...net.Conn) {
	t.mu.Lock()
	if t.conns == nil {
		t.conns = map[net.Conn]struct{}{}
	}
	for _, c := range cs {
		t.conns[c] = struct{}{}
	}
	t.mu.Unlock()
}

func (t *l4Conns) remove(cs ...net.Conn) {
	t.mu.Lock()
	for _, c := range cs {
		delete(t.conns, c)
	}
	t.mu.Unlock()
}

// closeAll cuts every connection still open.
func (t *l4Conns) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		c.Close()
	}
}

// tcpSocket serves TCP and TLS listeners: each connection is spliced to a backend of the
// listener's route (TLS: chosen by the ClientHello's server name, passed through or
// terminated).
type tcpSocket struct {
	socketBase
	ln net.Listener
	l4 l4Conns
}

func listenTCP(s *Server, l *ir.Listener) (socket, error) {
	ln, err := net.Listen("tcp", l.Name)
	if err != nil {
		return nil, err
	}
	return &tcpSocket{socketBase: socketBase{name: l.Name, proto: l.Protocol, owner: s}, ln: ln}, nil
}

func (sk *tcpSocket) addr() string { return sk.ln.Addr().String() }

// drain stops accepting and lets spliced connections run until ctx ends, then cuts them.
func (sk *tcpSocket) drain(ctx context.Context, _ bool) {
	sk.ln.Close()
	done := make(chan struct{})
	go func() { sk.l4.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		sk.l4.closeAll()
	}
}

// serve accepts connections and splices each to a backend of the socket's current route.
func (sk *tcpSocket) serve() {
	s := sk.owner
	var backoff time.Duration
	for {
		c, err := sk.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !s.conns.Acquire() {
			c.Close()
			s.rejected(c.RemoteAddr(), 503, h1.RejectConnLimit)
			continue
		}
		sk.l4.wg.Add(1)
		go func() {
			defer sk.l4.wg.Done()
			defer s.conns.Release()
			sk.splice(s, c, time.Now())
		}()
	}
}

// splice connects a client to a backend endpoint (trying a second endpoint if the first
// refuses) and copies bytes both ways, passing on half-closes, until both directions end or
// the connection idles past the route's idle timeout.
func (sk *tcpSocket) splice(s *Server, c net.Conn, start time.Time) {
	defer c.Close()
	rec := &accessRecord{Protocol: string(sk.proto)}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		rec.ClientIP = a.IP.String()
	}
	defer s.l4Done(rec, start)
	g := sk.graph.Load()
	if g == nil {
		rec.Error = "no route"
		return
	}
	route := g.l4
	var hello []byte
	if sk.proto == ir.ProtocolTLS {
		// Passthrough: route by the ClientHello's server name, then replay the hello to the
		// backend, which completes the handshake with its own certificate.
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		name, consumed, err := readClientHello(c)
		c.SetReadDeadline(time.Time{})
		if err != nil {
			s.log.Debug("TLS route: no ClientHello", "listener", sk.name, "err", err)
			rec.Error = "no TLS ClientHello: " + err.Error()
			return
		}
		route, hello = nil, consumed
		rec.Host = name
		terminate := false
		for _, r := range g.sni {
			if hostname.Match(r.hostname, name) {
				route, terminate = r.route, r.terminate
				break
			}
		}
		if route != nil && terminate {
			if g.certs == nil {
				rec.Error = "no certificate"
				return
			}
			// Terminate: the handshake (hello replayed) with the listener's certificate for
			// this name; the backend gets the plaintext.
			tc := tls.Server(&replayConn{Conn: c, r: io.MultiReader(bytes.NewReader(hello), c)}, &tls.Config{
				MinVersion:     tls.VersionTLS12,
				GetCertificate: g.certs.get,
			})
			tc.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tc.Handshake(); err != nil {
				s.log.Debug("TLS route: handshake failed", "listener", sk.name, "err", err)
				rec.Error = "TLS handshake: " + err.Error()
				return
			}
			tc.SetDeadline(time.Time{})
			c, hello = tc, nil
			defer tc.Close()
		}
	}
	if route == nil {
		rec.Error = "no route"
		return
	}
	rec.Route, rec.tel = route.route.Name, route.tel
	wb := route.pick()
	if wb == nil || wb.Invalid {
		rec.Error = "the route's backend is not available (invalid reference)"
		return
	}
	rec.Backend = wb.Backend
	cluster := g.clusters[wb.Backend]
	if cluster == nil {
		rec.Error = "backend not found"
		return
	}
	var tried []netip.Addr
	var up net.Conn
	for attempt := 0; attempt < 2 && up == nil; attempt++ {
		addr, err := cluster.Pick(tried)
		if err != nil {
			s.log.Debug("TCP route: no endpoint", "listener", sk.name, "backend", wb.Backend, "err", err)
			rec.Error = err.Error()
			return
		}
		tried = append(tried, addr.IP)
		rec.Upstream = addr.HostPort(wb.Port)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		up, err = cluster.DialContext(ctx, "tcp", rec.Upstream)
		cancel()
		if err != nil {
			s.log.Debug("TCP route: dial failed", "listener", sk.name, "backend", wb.Backend, "err", err)
			rec.Error = err.Error()
		}
	}
	rec.UpstreamMS = float64(time.Since(start).Microseconds()) / 1000
	if up == nil {
		return
	}
	rec.Error = ""
	defer up.Close()
	if len(hello) > 0 {
		if _, err := up.Write(hello); err != nil {
			rec.Error = err.Error()
			return
		}
		rec.BytesReceived = int64(len(hello))
	}
	sk.l4.add(c, up)
	defer sk.l4.remove(c, up)
	received := make(chan int64, 1)
	go func() { received <- pipe(up, c, route.idle) }()
	rec.BytesSent = pipe(c, up, route.idle)
	rec.BytesReceived += <-received
}

// pipe copies src to dst until src ends (then half-closes dst) or idles past idle, and
// returns the bytes written to dst.
func pipe(dst, src net.Conn, idle time.Duration) (written int64) {
	buf := bufferPool{}.Get()
	defer bufferPool{}.Put(buf)
	for {
		src.SetReadDeadline(time.Now().Add(idle))
		n, err := src.Read(buf)
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			written += int64(w)
			if werr != nil {
				src.Close()
				return written
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if cw, ok := dst.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
					return written
				}
			}
			dst.Close() // idle timeout or reset: both sides end
			src.Close()
			return written
		}
	}
}
