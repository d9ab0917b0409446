package tunnel

import (
	"context"
	"io"
	"log"
	"net"
	"net/netip"
	"testing"
)

// benchTunnel connects an agent to an endpoint on loopback (real QUIC) whose forwarded
// connections reach serve on a kernel socket, and returns a connection from the gateway side
// to the agent.
func benchTunnel(b *testing.B, streams bool, serve func(net.Conn)) (net.Conn, *AgentConn, *Server) {
	log.SetOutput(io.Discard) // connect-ip-go logs every session end
	s, addr, clientTLS := endpoint(b)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	a, err := Connect(context.Background(), AgentOptions{Endpoint: addr, Token: "good", Name: "bench", TLS: clientTLS,
		Streams: streams,
		Forward: func(netip.Prefix, netip.AddrPort) string { return l.Addr().String() }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.Close)
	c, err := s.DialContext(context.Background(), "p1", "tcp", netip.AddrPortFrom(AgentAddr(a.Prefix), 80).String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c, a, s
}

// paths are the two ways a gateway's TCP connection reaches an agent: a QUIC stream, or
// IP packets through the overlay's stacks.
var paths = []struct {
	name    string
	streams bool
}{{"streams", true}, {"packets", false}}

// BenchmarkTunnelRoundTrip is a 64-byte request and answer on one kept-alive connection
// through the tunnel: the latency a kept-alive upstream connection adds.
func BenchmarkTunnelRoundTrip(b *testing.B) {
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) { benchRoundTrip(b, p.streams) })
	}
}

func benchRoundTrip(b *testing.B, streams bool) {
	c, _, _ := benchTunnel(b, streams, func(c net.Conn) { io.Copy(c, c) })
	buf := make([]byte, 64)
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTunnelBulk streams from the agent's side to the gateway's (a download through
// the tunnel); it reports MB/s and the agent stack's retransmits per MB.
func BenchmarkTunnelBulk(b *testing.B) {
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) { benchBulk(b, p.streams) })
	}
}

func benchBulk(b *testing.B, streams bool) {
	chunk := make([]byte, 256<<10)
	c, a, _ := benchTunnel(b, streams, func(c net.Conn) {
		defer c.Close()
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	buf := make([]byte, 256<<10)
	r0 := a.Stack.TCPRetransmits()
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for b.Loop() {
		if _, err := io.ReadFull(c, buf[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:]); err != nil {
			b.Fatal(err)
		}
	}
	mb := float64(b.N)
	b.ReportMetric(float64(a.Stack.TCPRetransmits()-r0)/mb, "retx/MB")
}
