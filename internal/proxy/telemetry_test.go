package proxy

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// TestTelemetryFilterAndStream: a Gateway whose Proxy logs only 5xx and slow exchanges writes
// exactly those, to the server's log and to its project's stream; another project's stream
// sees none of them; a route without telemetry logs everything.
func TestTelemetryFilterAndStream(t *testing.T) {
	var out syncBuffer
	s := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DrainTimeout: time.Second, AccessLog: &out})
	t.Cleanup(s.Close)
	_, ip, port := echoBackend(t, "one")
	errRoute := &ir.Route{Name: "p/err", Match: ir.Match{PathType: ir.PathPrefix, Path: "/err"}, Telemetry: "p/ns/gw",
		DirectResponse: &ir.DirectResponse{StatusCode: 503}}
	okRoute := testRoute("p/ok", "/ok", ir.WeightedBackend{Backend: "ns/one", Port: port, Weight: 1})
	okRoute.Telemetry = "p/ns/gw"
	plain := testRoute("p/plain", "/plain", ir.WeightedBackend{Backend: "ns/one", Port: port, Weight: 1})
	snap := &ir.Snapshot{
		Listeners: []*ir.Listener{{Name: "127.0.0.1:0", Address: "127.0.0.1", Port: 1, Protocol: ir.ProtocolHTTP,
			VirtualHosts: []*ir.VirtualHost{{Hostname: "*", Routes: []*ir.Route{errRoute, okRoute, plain}}}}},
		Backends: []*ir.Backend{{Name: "ns/one", Protocol: "plain", Endpoints: []ir.Endpoint{{IP: ip}}}},
		Telemetry: map[string]*ir.Telemetry{"p/ns/gw": {Project: "p", Gateway: "ns/gw",
			AccessLog: ir.AccessLog{StatusCodes: []ir.StatusRange{{Min: 500, Max: 599}}, SamplingRate: 0}}},
	}
	if err := s.Apply("p", snap); err != nil {
		t.Fatal(err)
	}
	waitResolved(t, s, "ns/one")
	other := s.Logs("q")
	follow := s.Logs("p").Follow(16, nil)
	defer follow.Close()
	addr := "http://" + s.Addrs()["127.0.0.1:0"]
	for range 3 {
		if code, _, _ := get(t, addr+"/ok", "a.example.com"); code != 200 {
			t.Fatalf("/ok: %d", code)
		}
	}
	if code, _, _ := get(t, addr+"/err", "a.example.com"); code != 503 {
		t.Fatalf("/err: %d", code)
	}
	if code, _, _ := get(t, addr+"/plain", "a.example.com"); code != 200 {
		t.Fatalf("/plain: %d", code)
	}
	s.FlushAccessLog()
	log := out.String()
	if n := strings.Count(log, "\n"); n != 2 || !strings.Contains(log, `"route":"p/err"`) || !strings.Contains(log, `"route":"p/plain"`) {
		t.Fatalf("server log has %d lines, want the 503 and the route without telemetry:\n%s", n, log)
	}
	recent := s.Logs("p").Recent(time.Time{}, 0, nil)
	if len(recent) != 1 || recent[0].Status != 503 || recent[0].Route != "p/err" || !strings.Contains(string(recent[0].Line), `"status":503`) {
		t.Fatalf("project stream: %+v", recent)
	}
	select {
	case e := <-follow.C():
		if e.Status != 503 {
			t.Fatalf("follower got %+v", e)
		}
	case <-time.After(time.Second):
		t.Fatal("follower got nothing")
	}
	if got := other.Recent(time.Time{}, 0, nil); len(got) != 0 {
		t.Fatalf("another project's stream got %d lines", len(got))
	}
}

func TestTelemetryKeeps(t *testing.T) {
	ts := &telemetryState{statuses: []ir.StatusRange{{Min: 429, Max: 429}}, minDur: time.Second, sample: 0}
	for _, tc := range []struct {
		status int
		d      time.Duration
		want   bool
	}{{200, 0, false}, {429, 0, true}, {500, 0, false}, {200, 2 * time.Second, true}} {
		if got := ts.keeps(tc.status, tc.d); got != tc.want {
			t.Errorf("keeps(%d, %v) = %v", tc.status, tc.d, got)
		}
	}
	var none *telemetryState
	if !none.keeps(200, 0) {
		t.Error("no telemetry settings must log everything")
	}
	half := &telemetryState{sample: 50}
	n := 0
	for range 10000 {
		if half.keeps(200, 0) {
			n++
		}
	}
	if n < 4500 || n > 5500 {
		t.Errorf("50%% sampling kept %d of 10000", n)
	}
}
