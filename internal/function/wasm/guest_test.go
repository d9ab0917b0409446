package wasm

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"

	"apoxy.dev/apoxy/internal/function"
)

// Guests are built from testdata once per test run, into a temporary directory, with the
// local Go toolchain; their compiled code is shared through one compilation cache.
var (
	guestDir   string
	guestCache wazero.CompilationCache
	guestMu    sync.Mutex
	guestBuilt = map[string][]byte{}
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wasm-guests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	guestDir = dir
	guestCache = wazero.NewCompilationCache()
	code := m.Run()
	_ = guestCache.Close(context.Background())
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// guest is the Wasm module built from testdata/name, skipping the test when there is no Go
// toolchain.
func guest(tb testing.TB, name string) []byte {
	tb.Helper()
	guestMu.Lock()
	defer guestMu.Unlock()
	if b, ok := guestBuilt[name]; ok {
		return b
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			tb.Skip("no go toolchain to build the guests")
		}
	}
	out := filepath.Join(guestDir, name+".wasm")
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-ldflags=-s -w", "-o", out, "./testdata/"+name)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building guest %s: %v\n%s", name, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	guestBuilt[name] = b
	return b
}

// load loads a guest with the shared compilation cache, closing it when the test ends.
func load(tb testing.TB, name string, mode function.Mode, limits function.Limits, opts ...Option) *Function {
	tb.Helper()
	opts = append([]Option{WithCompilationCache(guestCache)}, opts...)
	f, err := Load(context.Background(), guest(tb, name), mode, limits, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = f.Close() })
	return f
}

// newRequest is a request for uri with header h and body.
func newRequest(method, uri string, h http.Header, body string) *function.Request {
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		panic(err)
	}
	if h == nil {
		h = http.Header{}
	}
	req := &function.Request{Method: method, URL: u, Host: "example.com", Header: h,
		RemoteAddr: "192.0.2.7:4711", Proto: "HTTP/1.1"}
	if body != "" {
		req.Body = strings.NewReader(body)
	}
	return req
}

// mode is a header choosing the test guest's behaviour.
func mode(m string) http.Header { return http.Header{"X-Mode": {m}} }

// readBody reads what a passing filter left as the request body.
func readAll(tb testing.TB, r io.Reader) string {
	tb.Helper()
	if r == nil {
		return ""
	}
	b, err := io.ReadAll(r)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
