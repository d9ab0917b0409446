// Package h2spectest gives tests the h2spec binary (the HTTP/2 conformance tester), at the
// version go.mod pins as a tool, so that the HTTP/2 server's unit tests and the end-to-end
// tests against `apoxy dev` run the same 145 cases.
package h2spectest

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// Binary returns the h2spec binary: $APOXY_H2SPEC, or built from the pinned module.
func Binary(t testing.TB) string {
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

// Run runs h2spec with args against host:port and fails the test unless every case passed.
// It returns the summary line ("145 tests, 145 passed, 0 skipped, 0 failed").
func Run(t testing.TB, host, port string, args ...string) string {
	t.Helper()
	out, err := exec.Command(Binary(t), append([]string{"-h", host, "-p", port, "-o", "3"}, args...)...).CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	summary := lines[len(lines)-1]
	if err != nil || !strings.HasSuffix(summary, " 0 failed") {
		t.Errorf("h2spec %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return summary
}

// Settings opens a cleartext HTTP/2 connection to addr (prior knowledge) and returns the
// server's first SETTINGS: what limits it advertises to a new client.
func Settings(t testing.TB, addr string) map[http2.SettingID]uint32 {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(nc, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(nc, nc)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %v, want SETTINGS", f)
	}
	got := map[http2.SettingID]uint32{}
	_ = sf.ForeachSetting(func(s http2.Setting) error { got[s.ID] = s.Val; return nil })
	return got
}
