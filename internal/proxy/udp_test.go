package proxy

import (
	"net"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// TestUDPSessionsExpire: datagrams from one client address share a session (one upstream
// socket, so the backend sees one source port) until the session idles past the route's idle
// timeout; the next datagram opens a new session.
func TestUDPSessionsExpire(t *testing.T) {
	s := testServer(t)
	back, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	sources := make(chan string, 16)
	go func() {
		b := make([]byte, 1500)
		for {
			n, from, err := back.ReadFromUDP(b)
			if err != nil {
				return
			}
			sources <- from.String()
			back.WriteToUDP(b[:n], from)
		}
	}()
	port := int32(back.LocalAddr().(*net.UDPAddr).Port)
	snap := &ir.Snapshot{
		Listeners: []*ir.Listener{{Name: ir.SocketName(ir.ProtocolUDP, "127.0.0.1", 0), Address: "127.0.0.1", Port: 1, Protocol: ir.ProtocolUDP,
			L4: &ir.L4Route{Name: "udp", Backends: []ir.WeightedBackend{{Backend: "ns/udp", Port: port, Weight: 1}}, IdleTimeout: ir.Duration(time.Second)}}},
		Backends: []*ir.Backend{{Name: "ns/udp", Protocol: "plain", Endpoints: []ir.Endpoint{{IP: "127.0.0.1"}}}},
	}
	if err := s.Apply("p", snap); err != nil {
		t.Fatal(err)
	}
	waitResolved(t, s, "ns/udp")
	c, err := net.Dial("udp", s.Addrs()["udp/127.0.0.1:0"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(msg string) string {
		t.Helper()
		c.Write([]byte(msg))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		b := make([]byte, 64)
		n, err := c.Read(b)
		if err != nil || string(b[:n]) != msg {
			t.Fatalf("echo of %q: %q, %v", msg, b[:n], err)
		}
		return <-sources
	}
	first := send("a")
	if again := send("b"); again != first {
		t.Fatalf("one session used two upstream sockets: %s, %s", first, again)
	}
	time.Sleep(2500 * time.Millisecond) // idle 1 s, swept every second
	if after := send("c"); after == first || !strings.HasPrefix(after, "127.0.0.1:") {
		t.Fatalf("after the idle timeout the session was kept (%s)", after)
	}
}
