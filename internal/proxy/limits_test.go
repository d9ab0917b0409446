package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is an access log the test can read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// exchange writes raw bytes on a new connection and reads one response.
func exchange(t *testing.T, addr, raw string, thenWait time.Duration) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10*time.Second + thenWait))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%.40q: %v", raw, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

// waitLog waits until the access log holds a line with every fragment.
func waitLog(t *testing.T, log *syncBuffer, fragments ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for line := range strings.SplitSeq(log.String(), "\n") {
			ok := true
			for _, f := range fragments {
				ok = ok && strings.Contains(line, f)
			}
			if ok {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no access-log line with %q in:\n%s", fragments, log.String())
}

// TestClientFaultsAreLoggedAsSuch: requests the server refuses before routing (an oversized
// head) appear in the access log (W8), and an upload that is malformed or stalls is answered
// and logged as the client's fault, 400 or 408 with the bytes actually read, not as an upstream
// failure (W3, F7).
func TestClientFaultsAreLoggedAsSuch(t *testing.T) {
	log := &syncBuffer{}
	addr := hygieneServer(t, Options{AccessLog: log, BodyReadTimeout: time.Second})

	code, _ := exchange(t, addr, "GET /public/x HTTP/1.1\r\nHost: files.test\r\nX-Big: "+strings.Repeat("a", 70<<10)+"\r\n\r\n", 0)
	if code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("70 KiB head: %d, want 431", code)
	}
	waitLog(t, log, `"status":431`, `header_too_large`)

	var many strings.Builder
	for i := range 101 {
		many.WriteString("X-H" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + ": v\r\n")
	}
	if code, _ := exchange(t, addr, "GET /public/x HTTP/1.1\r\nHost: files.test\r\n"+many.String()+"\r\n", 0); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("101 header fields: %d, want 431", code)
	}

	code, body := exchange(t, addr, "POST /public/x HTTP/1.1\r\nHost: files.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n", 0)
	if code != http.StatusBadRequest {
		t.Fatalf("malformed chunked upload: %d %q, want 400", code, body)
	}
	waitLog(t, log, `"status":400`, `"bytes_received":5`, `"route":"public"`)

	start := time.Now()
	code, _ = exchange(t, addr, "POST /public/x HTTP/1.1\r\nHost: files.test\r\nContent-Length: 100000\r\n\r\nx", 5*time.Second)
	if code != http.StatusRequestTimeout {
		t.Fatalf("stalled upload: %d, want 408", code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stalled upload answered after %v with a 1 s body timeout", d)
	}
	waitLog(t, log, `"status":408`, `"bytes_received":1`)
}
