package h2

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// h2spec returns the h2spec binary: $APOXY_H2SPEC, or built from the version go.mod pins as a
// tool (github.com/summerwind/h2spec).
func h2spec(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("APOXY_H2SPEC"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "h2spec")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "github.com/summerwind/h2spec/cmd/h2spec")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building h2spec: %v\n%s", err, out)
	}
	return bin
}

// TestH2Spec runs h2spec (every test of RFC 7540/9113 and HPACK: 145) against the server over
// cleartext, with prior knowledge.
func TestH2Spec(t *testing.T) {
	bin := h2spec(t)
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
