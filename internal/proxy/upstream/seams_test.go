package upstream

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// countingDialer records every connection the data plane opens.
type countingDialer struct {
	mu    sync.Mutex
	dials []string
}

func (d *countingDialer) DialContext(ctx context.Context, scope, network, addr string, control func(string, string, syscall.RawConn) error) (net.Conn, error) {
	d.mu.Lock()
	d.dials = append(d.dials, network+" "+addr)
	d.mu.Unlock()
	return NetDialer{}.DialContext(ctx, scope, network, addr, control)
}

func (d *countingDialer) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.dials)
}

// lastPicker always picks the last healthy address.
type lastPicker struct{}

func (lastPicker) Pick(list []*Address, _ Key) *Address { return list[len(list)-1] }

// TestDialerAndPickerSeams: every outbound connection of a cluster (requests and health checks)
// goes through the Options' Dialer, and endpoint choice through its Picker.
func TestDialerAndPickerSeams(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	ap := netip.MustParseAddrPort(srv.Listener.Addr().String())
	d := &countingDialer{}
	m := NewManager(Options{Dialer: d, NewPicker: func(*ir.Backend) Picker { return lastPicker{} }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer m.Close()
	b := &ir.Backend{Name: "p/ns/b", Protocol: "plain",
		Endpoints:   []ir.Endpoint{{IP: "127.0.0.2"}, {IP: ap.Addr().String()}},
		HealthCheck: &ir.HealthCheck{Interval: ir.Duration(time.Hour)}}
	c := m.Sync([]*ir.Backend{b}, map[string]int32{b.Name: int32(ap.Port())})[b.Name]
	c.WaitResolved(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for d.count() < 2 && time.Now().Before(deadline) { // one TCP health probe per address
		time.Sleep(10 * time.Millisecond)
	}
	probes := d.count()
	if probes < 2 {
		t.Fatalf("health probes did not go through the Dialer: %v", d.dials)
	}
	for i := 0; i < 3; i++ {
		a, err := c.Pick(nil)
		if err != nil || a.IP != ap.Addr() {
			t.Fatalf("Pick = %v %v, want the last address %s (custom Picker)", a, err, ap.Addr())
		}
	}
	req, _ := http.NewRequest("GET", "http://"+netip.AddrPortFrom(ap.Addr(), ap.Port()).String()+"/", nil)
	resp, err := c.Client().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if d.count() != probes+1 {
		t.Fatalf("the request's connection did not go through the Dialer: %v", d.dials)
	}
}

// TestHealthSurvivesSpecChange: a Backend change that keeps its endpoints (here its health
// check's timeout) starts the new cluster with the old one's addresses and health, so an
// endpoint known to be down gets no traffic while the new checks start.
func TestHealthSurvivesSpecChange(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	ap := netip.MustParseAddrPort(up.Listener.Addr().String())
	m := NewManager(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer m.Close()
	spec := func(timeout time.Duration) *ir.Backend {
		return &ir.Backend{Name: "p/ns/b", Protocol: "plain",
			Endpoints:   []ir.Endpoint{{IP: "127.0.0.3"}, {IP: ap.Addr().String()}},
			HealthCheck: &ir.HealthCheck{Interval: ir.Duration(time.Hour), Timeout: ir.Duration(timeout), UnhealthyThreshold: 1}}
	}
	probe := map[string]int32{"p/ns/b": int32(ap.Port())}
	// 127.0.0.3 listens on nothing at that port (the test server is on 127.0.0.1).
	c := m.Sync([]*ir.Backend{spec(time.Second)}, probe)["p/ns/b"]
	deadline := time.Now().Add(5 * time.Second)
	for len(*c.healthy.Load()) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(*c.healthy.Load()); n != 1 {
		t.Fatalf("healthy addresses before the change: %d, want 1", n)
	}
	c2 := m.Sync([]*ir.Backend{spec(2 * time.Second)}, probe)["p/ns/b"]
	if c2 == c {
		t.Fatal("the changed Backend kept its old cluster")
	}
	for range 20 {
		a, err := c2.Pick(nil)
		if err != nil || a.IP != ap.Addr() {
			t.Fatalf("right after the change Pick = %v %v, want only the healthy %s", a, err, ap.Addr())
		}
	}
}
