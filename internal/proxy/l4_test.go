package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"apoxy.dev/apoxy/internal/ir"
)

// logBuffer collects access-log lines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the decoded lines written so far.
func (l *logBuffer) lines(t *testing.T) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.b.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// TestL4ConnectionsAreLoggedAndCounted: a TCP route's connection gets an access-log line and
// metrics like an HTTP request: route, backend, upstream address, bytes each way, duration;
// a UDP session gets one when it ends; a connection that cannot be served says why.
func TestL4ConnectionsAreLoggedAndCounted(t *testing.T) {
	var logs logBuffer
	s := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AccessLog: &logs, DrainTimeout: time.Second})
	t.Cleanup(s.Close)
	// A TCP backend that reads 5 bytes and answers 11.
	back, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	go func() {
		for {
			c, err := back.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 5)
				io.ReadFull(c, b)
				c.Write([]byte("hello there"))
			}()
		}
	}()
	udpBack, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udpBack.Close()
	go func() {
		b := make([]byte, 1500)
		for {
			n, from, err := udpBack.ReadFromUDP(b)
			if err != nil {
				return
			}
			udpBack.WriteToUDP(append(b[:n:n], '!'), from)
		}
	}()
	port := int32(back.Addr().(*net.TCPAddr).Port)
	udpPort := int32(udpBack.LocalAddr().(*net.UDPAddr).Port)
	snap := &ir.Snapshot{
		Listeners: []*ir.Listener{
			{Name: "127.0.0.1:0", Address: "127.0.0.1", Port: 1, Protocol: ir.ProtocolTCP,
				L4: &ir.L4Route{Name: "ns/tcp-route", Backends: []ir.WeightedBackend{{Backend: "ns/tcp", Port: port, Weight: 1}}}},
			{Name: ir.SocketName(ir.ProtocolUDP, "127.0.0.1", 0), Address: "127.0.0.1", Port: 1, Protocol: ir.ProtocolUDP,
				L4: &ir.L4Route{Name: "ns/udp-route", Backends: []ir.WeightedBackend{{Backend: "ns/udp", Port: udpPort, Weight: 1}}, IdleTimeout: ir.Duration(time.Second)}},
		},
		Backends: []*ir.Backend{
			{Name: "ns/tcp", Protocol: "plain", Endpoints: []ir.Endpoint{{IP: "127.0.0.1"}}},
			{Name: "ns/udp", Protocol: "plain", Endpoints: []ir.Endpoint{{IP: "127.0.0.1"}}},
		},
	}
	if err := s.Apply("p", snap); err != nil {
		t.Fatal(err)
	}
	waitResolved(t, s, "ns/tcp")
	waitResolved(t, s, "ns/udp")
	okBefore := testutil.ToFloat64(s.metrics.l4Conns.WithLabelValues("ns/tcp-route", "TCP", "ok"))
	c, err := net.Dial("tcp", s.Addrs()["127.0.0.1:0"])
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello"))
	if b, err := io.ReadAll(c); string(b) != "hello there" {
		t.Fatalf("relayed %q, %v", b, err)
	}
	c.Close()

	u, err := net.Dial("udp", s.Addrs()["udp/127.0.0.1:0"])
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.Write([]byte("ping"))
	u.SetReadDeadline(time.Now().Add(2 * time.Second))
	if b := make([]byte, 16); func() bool { n, _ := u.Read(b); return string(b[:n]) != "ping!" }() {
		t.Fatal("no UDP echo")
	}

	find := func(proto string) map[string]any {
		deadline := time.Now().Add(5 * time.Second) // UDP: idle 1 s, swept every second
		for time.Now().Before(deadline) {
			s.accessLog.Flush()
			for _, l := range logs.lines(t) {
				if l["protocol"] == proto {
					return l
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no %s access-log line in %q", proto, logs.b.String())
		return nil
	}
	tcp := find("TCP")
	if tcp["route"] != "ns/tcp-route" || tcp["backend"] != "ns/tcp" || !strings.HasPrefix(tcp["upstream_address"].(string), "127.0.0.1:") ||
		tcp["bytes_received"] != 5.0 || tcp["bytes_sent"] != 11.0 || tcp["client_ip"] != "127.0.0.1" || tcp["error"] != nil || tcp["status"] != nil {
		t.Errorf("TCP line %v", tcp)
	}
	if _, ok := tcp["duration_ms"].(float64); !ok {
		t.Errorf("TCP line without duration: %v", tcp)
	}
	if got := testutil.ToFloat64(s.metrics.l4Conns.WithLabelValues("ns/tcp-route", "TCP", "ok")); got != okBefore+1 {
		t.Errorf("apoxy_l4_connections_total ok = %v, want %v", got, okBefore+1)
	}
	if got := testutil.ToFloat64(s.metrics.l4Bytes.WithLabelValues("ns/tcp-route", "sent")); got < 11 {
		t.Errorf("apoxy_l4_bytes_total sent = %v", got)
	}
	udp := find("UDP")
	if udp["route"] != "ns/udp-route" || udp["bytes_received"] != 4.0 || udp["bytes_sent"] != 5.0 {
		t.Errorf("UDP line %v", udp)
	}

	// The backend goes away: the next connection is logged with the reason.
	back.Close()
	c, err = net.Dial("tcp", s.Addrs()["127.0.0.1:0"])
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(c)
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.accessLog.Flush()
		var failed map[string]any
		for _, l := range logs.lines(t) {
			if l["protocol"] == "TCP" && l["error"] != nil {
				failed = l
			}
		}
		if failed != nil {
			if !strings.Contains(failed["error"].(string), "refused") || failed["route"] != "ns/tcp-route" {
				t.Errorf("failed connection line %v", failed)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line for the refused connection: %s", logs.b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
