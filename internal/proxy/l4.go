package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"apoxy.dev/apoxy/internal/proxy/h1"

	"apoxy.dev/apoxy/internal/hostname"
	"apoxy.dev/apoxy/internal/ir"
)

// l4Route is a TCP listener's route, ready to serve.
type l4Route struct {
	route *ir.L4Route
	total int32
	idle  time.Duration
}

func newL4Route(r *ir.L4Route) *l4Route {
	out := &l4Route{route: r, idle: time.Duration(r.IdleTimeout)}
	if out.idle <= 0 {
		out.idle = time.Hour
	}
	for _, b := range r.Backends {
		out.total += b.Weight
	}
	return out
}

// pick chooses a backendRef by weight; nil when every weight is zero.
func (r *l4Route) pick() *ir.WeightedBackend {
	if r.total <= 0 {
		return nil
	}
	n := rand.Int32N(r.total)
	for i := range r.route.Backends {
		b := &r.route.Backends[i]
		if n < b.Weight {
			return b
		}
		n -= b.Weight
	}
	return nil
}

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

// serveTCP accepts connections on a TCP listener and splices each to a backend of the
// socket's current route.
func (sk *socket) serveTCP(s *Server) {
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
			sk.splice(s, c)
		}()
	}
}

// splice connects a client to a backend endpoint (trying a second endpoint if the first
// refuses) and copies bytes both ways, passing on half-closes, until both directions end or
// the connection idles past the route's idle timeout.
func (sk *socket) splice(s *Server, c net.Conn) {
	defer c.Close()
	g := sk.graph.Load()
	if g == nil {
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
			return
		}
		route, hello = nil, consumed
		terminate := false
		for _, r := range g.sni {
			if hostname.Match(r.hostname, name) {
				route, terminate = r.route, r.terminate
				break
			}
		}
		if route != nil && terminate {
			if g.certs == nil {
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
				return
			}
			tc.SetDeadline(time.Time{})
			c, hello = tc, nil
			defer tc.Close()
		}
	}
	if route == nil {
		return
	}
	wb := route.pick()
	if wb == nil || wb.Invalid {
		return
	}
	cluster := g.clusters[wb.Backend]
	if cluster == nil {
		return
	}
	var tried []netip.Addr
	var up net.Conn
	for attempt := 0; attempt < 2 && up == nil; attempt++ {
		addr, err := cluster.Pick(tried)
		if err != nil {
			s.log.Debug("TCP route: no endpoint", "listener", sk.name, "backend", wb.Backend, "err", err)
			return
		}
		tried = append(tried, addr.IP)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		up, err = cluster.DialContext(ctx, "tcp", addr.HostPort(wb.Port))
		cancel()
		if err != nil {
			s.log.Debug("TCP route: dial failed", "listener", sk.name, "backend", wb.Backend, "err", err)
		}
	}
	if up == nil {
		return
	}
	defer up.Close()
	if len(hello) > 0 {
		if _, err := up.Write(hello); err != nil {
			return
		}
	}
	sk.l4.add(c, up)
	defer sk.l4.remove(c, up)
	done := make(chan struct{}, 2)
	go func() { pipe(up, c, route.idle); done <- struct{}{} }()
	pipe(c, up, route.idle)
	<-done
}

// pipe copies src to dst until src ends (then half-closes dst) or idles past idle.
func pipe(dst, src net.Conn, idle time.Duration) {
	buf := bufferPool{}.Get()
	defer bufferPool{}.Put(buf)
	for {
		src.SetReadDeadline(time.Now().Add(idle))
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if cw, ok := dst.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
					return
				}
			}
			dst.Close() // idle timeout or reset: both sides end
			src.Close()
			return
		}
	}
}
