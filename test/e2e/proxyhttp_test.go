package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"apoxy.dev/apoxy/internal/h2spectest"
)

// TestProxyHTTPLimits: a user tunes the default Proxy's client limits with `apoxy apply`
// (HTTP/2 streams and window, the header size) and clients of the default Gateway see them
// on their next connection, over h2c (SETTINGS) and HTTP/1.1 (431 past the head size); a
// Proxy with an out-of-range limit is refused naming the field, and the limits in force stay.
func TestProxyHTTPLimits(t *testing.T) {
	d := startDev(t, "")
	settings := func() map[http2.SettingID]uint32 { return h2spectest.Settings(t, d.httpAddr) }
	headStatus := func(pad int) int {
		nc, err := net.Dial("tcp", d.httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(nc, "GET / HTTP/1.1\r\nHost: a.test\r\nX-Pad: "+strings.Repeat("p", pad)+"\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := settings()[http2.SettingMaxConcurrentStreams]; got != 250 {
		t.Fatalf("default MAX_CONCURRENT_STREAMS %d, want 250", got)
	}

	must(t, d.apoxy(t, `apiVersion: core.apoxy.dev/v1alpha2
kind: Proxy
metadata: {name: default}
spec:
  http:
    maxRequestHeaderBytes: 4096
    requestBodyTimeout: 20s
    http2: {maxConcurrentStreams: 7, initialStreamWindowSize: 131072}
`, "apply", "-f", "-"))
	waitFor(t, func() bool { return settings()[http2.SettingMaxConcurrentStreams] == 7 })
	if got := settings(); got[http2.SettingInitialWindowSize] != 131072 || got[http2.SettingMaxHeaderListSize] != 4096 {
		t.Fatalf("SETTINGS %v, want window 131072 and header list 4096", got)
	}
	if code := headStatus(6000); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a 6 KB head over maxRequestHeaderBytes 4096: %d, want 431", code)
	}

	r := d.apoxy(t, `apiVersion: core.apoxy.dev/v1alpha2
kind: Proxy
metadata: {name: default}
spec:
  http: {http2: {maxConcurrentStreams: 0}}
`, "apply", "-f", "-")
	if r.err == nil || !strings.Contains(r.stdout+r.stderr, "spec.http.http2.maxConcurrentStreams") {
		t.Fatalf("a Proxy with maxConcurrentStreams 0 was not refused naming the field: %s", r)
	}
	time.Sleep(500 * time.Millisecond)
	if got := settings()[http2.SettingMaxConcurrentStreams]; got != 7 {
		t.Fatalf("after a refused Proxy, MAX_CONCURRENT_STREAMS %d, want 7 (kept)", got)
	}
}
