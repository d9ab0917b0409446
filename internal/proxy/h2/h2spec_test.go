package h2

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/h2spectest"
)

// TestH2Spec runs h2spec (every case of RFC 7540/9113 and HPACK: 145) against the server over
// cleartext, with prior knowledge; "resting", idle connections rest in netpeek's Parker between
// requests (IdleRest 1 ms), as they do when idle for a second.
func TestH2Spec(t *testing.T) {
	for _, resting := range []bool{false, true} {
		t.Run(map[bool]string{false: "awake", true: "resting"}[resting], func(t *testing.T) {
			s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				io.WriteString(w, "hello from h2spec's server")
			}), Limits: Limits{IdleRest: map[bool]time.Duration{false: -1, true: time.Millisecond}[resting]}}
			host, port, _ := net.SplitHostPort(serve(t, s))
			t.Log(h2spectest.Run(t, host, port))
		})
	}
}
