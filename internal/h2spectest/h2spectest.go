// Package h2spectest gives tests the h2spec binary (the HTTP/2 conformance tester), at the
// version go.mod pins as a tool, so that the HTTP/2 server's unit tests and the end-to-end
// tests against `apoxy dev` run the same 145 cases.
package h2spectest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
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
