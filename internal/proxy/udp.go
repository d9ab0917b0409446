package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// udpSessionIdle ends a UDP session with no datagram either way for this long, unless the
// route says otherwise.
const udpSessionIdle = time.Minute

// udpSession relays one client address's datagrams to one backend endpoint (chosen when the
// session starts) and the endpoint's answers back.
type udpSession struct {
	up   net.Conn
	last atomic.Int64 // unix nanoseconds of the last datagram either way
}

// serveUDP reads datagrams on a UDP listener and relays each client address's datagrams to a
// backend of the socket's route, keeping sessions by client address until they idle out.
func (sk *socket) serveUDP(s *Server) {
	sessions := map[netip.AddrPort]*udpSession{}
	var mu sync.Mutex
	stop := make(chan struct{})
	defer close(stop)
	defer func() {
		mu.Lock()
		for _, ss := range sessions {
			ss.up.Close()
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
					ss.up.Close()
					delete(sessions, addr)
				}
			}
			mu.Unlock()
		}
	}()
	pc := sk.udp.(*net.UDPConn)
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
		ss.up.Write(buf[:n])
	}
}

// newUDPSession picks a backend endpoint for a client and starts relaying its answers back.
func (sk *socket) newUDPSession(s *Server, pc *net.UDPConn, client netip.AddrPort) *udpSession {
	g := sk.graph.Load()
	if g == nil || g.l4 == nil {
		return nil
	}
	wb := g.l4.pick()
	if wb == nil || wb.Invalid {
		return nil
	}
	cluster := g.clusters[wb.Backend]
	if cluster == nil {
		return nil
	}
	addr, err := cluster.Pick(nil)
	if err != nil {
		return nil
	}
	// Through the cluster's Dialer, under the destination policy.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	up, err := cluster.DialContext(ctx, "udp", addr.HostPort(wb.Port))
	cancel()
	if err != nil {
		s.log.Debug("UDP route: dial failed", "listener", sk.name, "backend", wb.Backend, "err", err)
		return nil
	}
	ss := &udpSession{up: up}
	ss.last.Store(time.Now().UnixNano())
	go func() {
		b := make([]byte, 64<<10)
		for {
			n, err := up.Read(b)
			if n > 0 {
				ss.last.Store(time.Now().UnixNano())
				pc.WriteToUDPAddrPort(b[:n], client)
			}
			if err != nil && errors.Is(err, net.ErrClosed) {
				return
			}
		}
	}()
	return ss
}
