package proxy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/proxy/filter"
)

// TestAccessLogLineIsJSON: the hand-written encoder produces what encoding/json reads back,
// for every field and awkward strings (quotes, control characters, HTML, invalid UTF-8).
func TestAccessLogLineIsJSON(t *testing.T) {
	rec := &accessRecord{RequestID: "id", ClientIP: "127.0.0.1", Method: "GET", Host: "a.example.com", Path: "/q\"\\\n\t\x01<&>\u2028é\xff",
		Protocol: "HTTP/1.1", Status: 502, BytesReceived: 3, BytesSent: 12345, DurationMS: 1.25, UpstreamMS: 0.5,
		Route: "r", Backend: "b", Upstream: "10.0.0.1:80", Error: "dial tcp: refused", UserAgent: "curl/8",
		Flags: filter.FlagRateLimited | filter.FlagDelayInjected, RateLimit: "over_limit"}
	line := rec.appendJSON(nil, time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC))
	if !strings.HasSuffix(string(line), "}\n") {
		t.Fatalf("line %q does not end the object and the line", line)
	}
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	want := map[string]any{"time": "2026-01-02T03:04:05.000006Z", "request_id": "id", "client_ip": "127.0.0.1", "method": "GET",
		"host": "a.example.com", "path": "/q\"\\\n\t\x01<&>\u2028é\ufffd", "protocol": "HTTP/1.1", "status": 502.0, "bytes_received": 3.0,
		"bytes_sent": 12345.0, "duration_ms": 1.25, "upstream_ms": 0.5, "route": "r", "backend": "b", "upstream_address": "10.0.0.1:80",
		"error": "dial tcp: refused", "user_agent": "curl/8", "ratelimit": "over_limit", "response_flags": "RL,DI"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %v\nwant    %v", got, want)
	}
}

// TestAccessLogTime: the cached per-second prefix never leaks into another second, and the
// microseconds are zero-padded.
func TestAccessLogTime(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), "2026-01-02T03:04:05.000006Z"},
		{time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.UTC), "2026-01-02T03:04:05.999999Z"},
		{time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC), "2026-01-02T03:04:06.000000Z"},
		{time.Date(2026, 1, 2, 4, 4, 6, 120000, time.FixedZone("x", 3600)), "2026-01-02T03:04:06.000120Z"},
	} {
		if got := string(appendTime(nil, tc.t)); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.t, got, tc.want)
		}
	}
}
