package proxy

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/accesslog"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/filter"
)

// TestAccessLogLineIsJSON: the default line is what encoding/json reads back, for every field
// and awkward strings (quotes, control characters, HTML, invalid UTF-8).
func TestAccessLogLineIsJSON(t *testing.T) {
	rec := &accessRecord{RequestID: "id", ClientIP: "127.0.0.1", Method: "GET", Host: "a.example.com", Path: "/q\"\\\n\t\x01<&>\u2028é\xff?x=1",
		Protocol: "HTTP/1.1", Status: 502, BytesReceived: 3, BytesSent: 12345, UpstreamMS: 0.5,
		Route: "r", Backend: "b", Upstream: "10.0.0.1:80", Error: "dial tcp: refused",
		Flags: filter.FlagRateLimited | filter.FlagDelayInjected, RateLimit: "over_limit", TraceID: "0af7651916cd43dd8448eb211c80319c",
		req: &http.Request{Header: http.Header{"X-Request-Id": {"id"}, "User-Agent": {"curl/8"}}}}
	var r = recordOf(rec, time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), 1250*time.Microsecond)
	line := defaultFormat.Append(nil, &r)
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
		"error": "dial tcp: refused", "user_agent": "curl/8", "ratelimit": "over_limit", "response_flags": "RL,DI", "trace_id": "0af7651916cd43dd8448eb211c80319c"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %v\nwant    %v", got, want)
	}
}

func recordOf(rec *accessRecord, start time.Time, d time.Duration) (r accesslog.Record) {
	rec.fill(&r, start, d)
	return r
}

// TestProxyAccessLogFormats: a Proxy's json map adds, replaces and removes fields of the
// default line; a text format replaces the line.
func TestProxyAccessLogFormats(t *testing.T) {
	rec := &accessRecord{Method: "POST", Host: "h", Path: "/p?q", Protocol: "HTTP/2", Status: 201, Route: "r", ClientIP: "10.0.0.9",
		req: &http.Request{Header: http.Header{"X-Tenant": {"acme"}, "User-Agent": {"ua"}}}, resp: http.Header{"Content-Type": {"text/plain"}}}
	r := recordOf(rec, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 2*time.Millisecond)
	f, err := compileFormat(ir.AccessLog{JSON: map[string]string{"tenant": "%REQ(X-TENANT)%", "user_agent": "", "status": "code=%RESPONSE_CODE%", "ctype": "%RESP(CONTENT-TYPE)%"}})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	line := f.Append(nil, &r)
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	if got["tenant"] != "acme" || got["status"] != "code=201" || got["ctype"] != "text/plain" || got["method"] != "POST" {
		t.Errorf("json additions: %s", line)
	}
	if _, ok := got["user_agent"]; ok {
		t.Errorf("a field set to \"\" stays: %s", line)
	}
	f, err = compileFormat(ir.AccessLog{Format: `%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL% %RESPONSE_CODE% %DURATION% "%REQ(X-TENANT)%" %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%`})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(f.Append(nil, &r)); got != "POST /p?q HTTP/2 201 2 \"acme\" 10.0.0.9\n" {
		t.Errorf("text line %q", got)
	}
	if _, err := compileFormat(ir.AccessLog{Format: "%BOGUS%"}); err == nil || !strings.Contains(err.Error(), "BOGUS") {
		t.Errorf("a bad format: %v", err)
	}
}
