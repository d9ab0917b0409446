package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// udpSessionIdle ends a UDP session with no datagram either way for this long, unless the
// route says otherwise.
const udpSessionIdle = time.Minute

// udpSocket serves a UDP listener: datagrams are relayed per client address (a session) to
// a backend of the listener's route.
type udpSocket struct {
	socketBase
	pc *net.UDPConn
}

func listenUDP(s *Server, l *ir.Listener) (socket, error) {
	pc, err := net.ListenPacket("udp", net.JoinHostPort(l.Address, strconv.Itoa(int(l.Port))))
	if err != nil {
		return nil, err
	}
	return &udpSocket{socketBase: socketBase{name: l.Name, proto: l.Protocol, owner: s}, pc: pc.(*net.UDPConn)}, nil
}

func (sk *udpSocket) addr() string { return sk.pc.LocalAddr().String() }

// drain closes the socket; its sessions end (and are logged) with it.
func (sk *udpSocket) drain(context.Context, bool) { sk.pc.Close() }

// udpSession relays one client address's datagrams to one backend endpoint (chosen when the
// session starts) and the endpoint's answers back.
type udpSession struct {
	up    net.Conn
	last  atomic.Int64 // unix nanoseconds of the last datagram either way
	start time.Time
	rec   accessRecord
	// received counts bytes from the client, sent bytes to it.
	received, sent atomic.Int64
}

// end closes the session and writes its access-log line and metrics.
func (ss *udpSession) end(s *Server) {
	ss.up.Close()
	ss.rec.BytesReceived, ss.rec.BytesSent = ss.received.Load(), ss.sent.Load()
	s.l4Done(&ss.rec, ss.start)
}

// serve reads datagrams and relays each client address's datagrams to a backend of the
// socket's route, keeping sessions by client address until they idle out.
func (sk *udpSocket) serve() {
	s := sk.owner
	sessions := map[netip.AddrPort]*udpSession{}
	var mu sync.Mutex
	stop := make(chan struct{})
	defer close(stop)
	defer func() {
		mu.Lock()
		for _, ss := range sessions {
			ss.end(s)
		}
		mu.Unlock()
	}()
	// Expire idle sessions.
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			idle := udpSessionIdle
			if g := sk.graph.Load(); g != nil && g.l4 != nil && g.l4.route.IdleTimeout > 0 {
				idle = time.Duration(g.l4.route.IdleTimeout)
			}
			now := time.Now().UnixNano()
			mu.Lock()
			for addr, ss := range sessions {
				if time.Duration(now-ss.last.Load()) > idle {
					ss.end(s)
					delete(sessions, addr)
				}
			}
			mu.Unlock()
		}
	}()
	pc := sk.pc
	buf := make([]byte, 64<<10)
	for {
		n, client, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		mu.Lock()
		ss := sessions[client]
		mu.Unlock()
		if ss == nil {
			if ss = sk.newUDPSession(s, pc, client); ss == nil {
				continue // no route or no endpoint: the datagram is dropped
			}
			mu.Lock()
			sessions[client] = ss
			mu.Unlock()
		}
		ss.last.Store(time.Now().UnixNano())
		if w, err := ss.up.Write(buf[:n]); err == nil {
			ss.received.Add(int64(w))
		}
	}
}

// newUDPSession picks a backend endpoint for a client and starts relaying its answers back.
// A client whose session cannot start (no route, no endpoint) gets its datagram dropped, and
// the refusal is logged and counted like a session.
func (sk *udpSocket) newUDPSession(s *Server, pc *net.UDPConn, client netip.AddrPort) *udpSession {
	start := time.Now()
	rec := accessRecord{Protocol: string(ir.ProtocolUDP), ClientIP: client.Addr().Unmap().String()}
	fail := func(msg string) *udpSession {
		rec.Error = msg
		s.l4Done(&rec, start)
		return nil
	}
	g := sk.graph.Load()
	if g == nil || g.l4 == nil {
		return fail("no route")
	}
	rec.Route, rec.tel = g.l4.route.Name, g.l4.tel
	wb := g.l4.pick()
	if wb == nil || wb.Invalid {
		return fail("the route's backend is not available (invalid reference)")
	}
	rec.Backend = wb.Backend
	cluster := g.clusters[wb.Backend]
	if cluster == nil {
		return fail("backend not found")
	}
	addr, err := cluster.Pick(nil)
	if err != nil {
		return fail(err.Error())
	}
	rec.Upstream = addr.HostPort(wb.Port)
	// Through the cluster's Dialer, under the destination policy.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	up, err := cluster.DialContext(ctx, "udp", rec.Upstream)
	cancel()
	if err != nil {
		s.log.Debug("UDP route: dial failed", "listener", sk.name, "backend", wb.Backend, "err", err)
		return fail(err.Error())
	}
	rec.UpstreamMS = float64(time.Since(start).Microseconds()) / 1000
	ss := &udpSession{up: up, start: start, rec: rec}
	ss.last.Store(time.Now().UnixNano())
	go func() {
		b := make([]byte, 64<<10)
		for {
			n, err := up.Read(b)
			if n > 0 {
				ss.last.Store(time.Now().UnixNano())
				if w, err := pc.WriteToUDPAddrPort(b[:n], client); err == nil {
					ss.sent.Add(int64(w))
				}
			}
			if err != nil && errors.Is(err, net.ErrClosed) {
				return
			}
		}
	}()
	return ss
}
