package proxy

import (
	"context"
	"fmt"
	"sync/atomic"

	"apoxy.dev/apoxy/internal/ir"
)

// socket is one bound listening address and what it serves. Each protocol family has its own
// type (httpSocket for HTTP and HTTPS with HTTP/3, tcpSocket for TCP and TLS routes, udpSocket
// for UDP routes); the server opens them through socketTypes, so a new kind of listener (a DNS
// server, a tunnel endpoint) is a new type and one line there, not a branch in the server.
type socket interface {
	// base is what every socket has: its name, protocol and current graph.
	base() *socketBase
	// serve accepts and serves until the socket is closed.
	serve()
	// drain stops accepting, waits for in-flight work until ctx ends, then cuts what remains.
	// final is the process shutting down (not a listener going away on a config change).
	drain(ctx context.Context, final bool)
	// addr is the bound address.
	addr() string
	// configure applies the listener's settings that change without rebinding (it is called
	// on every configuration, after the socket's graph is stored).
	configure(l *ir.Listener)
}

// socketBase is embedded by every socket type.
type socketBase struct {
	name  string
	proto ir.Protocol
	owner *Server
	graph atomic.Pointer[graph]
}

func (b *socketBase) base() *socketBase { return b }

// configure does nothing: a socket type with settings of its own overrides it.
func (b *socketBase) configure(*ir.Listener) {}

// socketTypes opens a socket for a listener, by protocol.
var socketTypes = map[ir.Protocol]func(s *Server, l *ir.Listener) (socket, error){
	ir.ProtocolHTTP:  listenHTTP,
	ir.ProtocolHTTPS: listenHTTP,
	ir.ProtocolTCP:   listenTCP,
	ir.ProtocolTLS:   listenTCP,
	ir.ProtocolUDP:   listenUDP,
}

func (s *Server) listen(l *ir.Listener) (socket, error) {
	open, ok := socketTypes[l.Protocol]
	if !ok {
		return nil, fmt.Errorf("proxy: listener %s: protocol %q has no socket type", l.Name, l.Protocol)
	}
	sk, err := open(s, l)
	if err != nil {
		return nil, fmt.Errorf("proxy: listen %s: %w", l.Name, err)
	}
	return sk, nil
}

// closeSocket stops a socket and waits up to the drain timeout (the Proxy's
// spec.shutdown.drainTimeout) for its in-flight work.
func (s *Server) closeSocket(sk socket, final bool) {
	s.mu.Lock()
	drain := s.drain
	s.mu.Unlock()
	if drain == 0 {
		drain = s.opts.DrainTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	sk.drain(ctx, final)
}
