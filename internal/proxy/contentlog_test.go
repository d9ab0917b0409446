package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// TestContentLog: bodies of the configured types and paths are captured (cut at the limit,
// marked truncated), redacted headers never show their values, a server-sent-events stream
// is passed on at once and not captured, other paths and types are not captured.
func TestContentLog(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/api/events":
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			fmt.Fprint(w, "data: one\n\n")
			w.(http.Flusher).Flush()
		case "/api/big":
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, strings.Repeat("y", 100))
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Set-Cookie", "session=secret")
			fmt.Fprintf(w, `{"echo":%q}`, body)
		}
	}))
	defer backend.Close()
	host, port, _ := net.SplitHostPort(backend.Listener.Addr().String())
	var p int
	fmt.Sscan(port, &p)
	var out syncBuffer
	s := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DrainTimeout: time.Second, AccessLog: &out})
	t.Cleanup(s.Close)
	r := testRoute("p/r", "/", ir.WeightedBackend{Backend: "ns/b", Port: int32(p), Weight: 1})
	r.Telemetry = "p/ns/gw"
	snap := &ir.Snapshot{
		Listeners: []*ir.Listener{{Name: "127.0.0.1:0", Address: "127.0.0.1", Port: 1, Protocol: ir.ProtocolHTTP, VirtualHosts: []*ir.VirtualHost{{Hostname: "*", Routes: []*ir.Route{r}}}}},
		Backends:  []*ir.Backend{{Name: "ns/b", Protocol: "plain", Endpoints: []ir.Endpoint{{IP: host}}}},
		Telemetry: map[string]*ir.Telemetry{"p/ns/gw": {Project: "p", Gateway: "ns/gw", AccessLog: ir.AccessLog{SamplingRate: 100},
			ContentLog: &ir.ContentLog{Request: true, Response: true, MaxBodyBytes: 32, ContentTypes: []string{"application/json", "text/*"}, Paths: []string{"/api"},
				RedactHeaders: []string{"Authorization", "Set-Cookie", "X-Secret"}}}},
	}
	if err := s.Apply("p", snap); err != nil {
		t.Fatal(err)
	}
	waitResolved(t, s, "ns/b")
	addr := "http://" + s.Addrs()["127.0.0.1:0"]
	post := func(path, ctype, body string) {
		req, _ := http.NewRequest("POST", addr+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Authorization", "Bearer top-secret")
		req.Header.Set("X-Secret", "hunter2")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	post("/api/users", "application/json", `{"name":"ada"}`)
	post("/api/big", "application/json", strings.Repeat("x", 100))
	post("/api/events", "application/json", `{}`)
	post("/other", "application/json", `{"not":"logged"}`)
	post("/api/bin", "application/octet-stream", "\x00\x01")
	s.FlushAccessLog()
	log := out.String()
	if strings.Contains(log, "top-secret") || strings.Contains(log, "hunter2") || strings.Contains(log, "session=secret") {
		t.Fatalf("a redacted header's value was logged:\n%s", log)
	}
	var content []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if m["type"] == "content" {
			content = append(content, m)
		}
	}
	if len(content) != 4 {
		t.Fatalf("%d content lines, want 4 (every /api exchange):\n%s", len(content), log)
	}
	req := func(i int) map[string]any { return content[i]["request"].(map[string]any) }
	resp := func(i int) map[string]any { return content[i]["response"].(map[string]any) }
	if req(0)["body"] != `{"name":"ada"}` || resp(0)["body"] != `{"echo":"{\"name\":\"ada\"}"}` || req(0)["headers"].(map[string]any)["Authorization"] != "[redacted]" {
		t.Errorf("first exchange: %v", content[0])
	}
	if req(1)["body"] != strings.Repeat("x", 32) || req(1)["body_truncated"] != true || resp(1)["body"] != strings.Repeat("y", 32) || resp(1)["body_truncated"] != true {
		t.Errorf("truncation: %v", content[1])
	}
	if _, ok := resp(2)["body"]; ok {
		t.Errorf("an event stream was captured: %v", content[2])
	}
	if _, ok := req(3)["body"]; ok || content[3]["path"] != "/api/bin" {
		t.Errorf("a binary request body was captured: %v", content[3])
	}
}
