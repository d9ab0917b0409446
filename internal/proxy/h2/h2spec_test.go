package h2

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestH2Spec runs h2spec (every test of RFC 7540/9113 and HPACK) against the server over
// cleartext. The h2spec binary is $APOXY_H2SPEC, or `go tool h2spec` from the module.
func TestH2Spec(t *testing.T) {
	bin := os.Getenv("APOXY_H2SPEC")
	if bin == "" {
		t.Skip("APOXY_H2SPEC not set")
	}
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		io.WriteString(w, "hello from h2spec's server")
	})}
	addr := serve(t, s)
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command(bin, "-h", host, "-p", port, "-o", "2").CombinedOutput()
	t.Logf("h2spec:\n%s", out)
	if err != nil || !strings.Contains(string(out), " 0 failed") {
		t.Errorf("h2spec failed: %v", err)
	}
}
