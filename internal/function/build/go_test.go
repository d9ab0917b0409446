package build

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/function"
	"apoxy.dev/apoxy/internal/function/kv"
	"apoxy.dev/apoxy/internal/function/wasm"
)

// needGo skips a test that compiles when there is no go command on PATH.
func needGo(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH")
	}
}

// compile builds files with the default options, failing the test on an error.
func compile(t *testing.T, files ...File) []byte {
	t.Helper()
	needGo(t)
	mod, err := GoWasm(context.Background(), files, GoOptions{})
	if err != nil {
		t.Fatalf("GoWasm: %v", err)
	}
	return mod
}

// load runs mod on the wasm runtime until the test ends.
func load(t *testing.T, mod []byte, mode function.Mode) function.Function {
	t.Helper()
	fn, err := wasm.Load(context.Background(), mod, mode, function.Limits{})
	if err != nil {
		t.Fatalf("loading the module: %v", err)
	}
	t.Cleanup(func() { _ = fn.Close() })
	return fn
}

func request(uri string) *function.Request {
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		panic(err)
	}
	return &function.Request{Method: "GET", URL: u, Host: "example.com", Header: http.Header{},
		RemoteAddr: "192.0.2.1:1234", Proto: "HTTP/1.1"}
}

func file(p, content string) File { return File{Path: p, Content: []byte(content)} }

// A pass-through filter, with a response hook from the sub-package onresponse: both parts
// of the embedded SDK reach the build.
const filterSrc = `package main

import (
	"apoxy.dev/apoxy/pkg/edgefunc"
	_ "apoxy.dev/apoxy/pkg/edgefunc/onresponse"
)

func main() {}

func init() {
	edgefunc.Handle(func(w edgefunc.ResponseWriter, r *edgefunc.Request) bool {
		r.SetHeader("X-Edge", "go:"+r.Method())
		return true
	})
	edgefunc.HandleResponse(func(resp *edgefunc.Response) {
		resp.SetHeader("X-Seen-Status", "yes")
	})
}
`

func TestGoWasmFilter(t *testing.T) {
	fn := load(t, compile(t, file("main.go", filterSrc)), function.ModeFilter)
	req := request("/x")
	res, err := fn.Invoke(context.Background(), req, &function.Host{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pass || req.Header.Get("X-Edge") != "go:GET" {
		t.Fatalf("pass=%v X-Edge=%q, want a pass with X-Edge go:GET", res.Pass, req.Header.Get("X-Edge"))
	}
	if res.Response == nil {
		t.Fatal("no response hook, though the function imports onresponse")
	}
	status, h := 200, http.Header{}
	if err := res.Response(context.Background(), &status, h, false); err != nil {
		t.Fatal(err)
	}
	if h.Get("X-Seen-Status") != "yes" {
		t.Fatalf("response headers %v", h)
	}
}

// A backend answers itself; its helper package is imported by the default module name.
func TestGoWasmBackend(t *testing.T) {
	mod := compile(t,
		file("main.go", `package main

import (
	"edgefunction/greet"

	"apoxy.dev/apoxy/pkg/edgefunc"
)

func main() {}

func init() {
	edgefunc.Handle(func(w edgefunc.ResponseWriter, r *edgefunc.Request) bool {
		w.SetHeader("Content-Type", "text/plain")
		w.WriteHeader(200)
		w.Write([]byte(greet.Word()))
		return false
	})
}
`),
		file("greet/greet.go", "package greet\n\nfunc Word() string { return \"hello\" }\n"),
		file("README.md", "not Go: ignored\n"))
	if len(mod) < 8 || string(mod[:4]) != "\x00asm" {
		t.Fatalf("not a WebAssembly module: % x", mod[:min(8, len(mod))])
	}
	res, err := load(t, mod, function.ModeBackend).Invoke(context.Background(), request("/"), &function.Host{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pass || res.Status != 200 || string(res.Body) != "hello" || res.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("got pass=%v %d %q %v, want 200 hello", res.Pass, res.Status, res.Body, res.Header)
	}
}

// A user's go.mod is kept (its module name, its go line) and the SDK replaces whatever
// version of apoxy.dev/apoxy it requires; the function uses env.KV on a real SQLite store.
func TestGoWasmUserGoMod(t *testing.T) {
	mod := compile(t,
		file("go.mod", "module example.com/counter\n\ngo 1.24\n\nrequire apoxy.dev/apoxy v1.2.3\n"),
		file("main.go", `package main

import (
	"strconv"

	"example.com/counter/internal/count"
	"apoxy.dev/apoxy/pkg/edgefunc"
)

func main() {}

func init() {
	edgefunc.Handle(func(w edgefunc.ResponseWriter, r *edgefunc.Request) bool {
		v, _, err := edgefunc.KVGet("visits")
		if err != nil {
			w.WriteHeader(500)
			return false
		}
		n := count.Next(string(v))
		if err := edgefunc.KVPut("visits", []byte(strconv.Itoa(n)), 0); err != nil {
			w.WriteHeader(500)
			return false
		}
		w.WriteHeader(200)
		w.Write([]byte(strconv.Itoa(n)))
		return false
	})
}
`),
		file("internal/count/count.go", "package count\n\nimport \"strconv\"\n\nfunc Next(s string) int { n, _ := strconv.Atoi(s); return n + 1 }\n"))
	store, err := kv.Open(filepath.Join(t.TempDir(), "kv.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	fn := load(t, mod, function.ModeBackend)
	host := &function.Host{KV: store.Namespace("counter")}
	for want := 1; want <= 3; want++ {
		res, err := fn.Invoke(context.Background(), request("/"), host)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != 200 || string(res.Body) != string(rune('0'+want)) {
			t.Fatalf("visit %d: %d %q", want, res.Status, res.Body)
		}
	}
	v, ok, err := store.Namespace("counter").Get(context.Background(), "visits")
	if err != nil || !ok || string(v.Value) != "3" {
		t.Fatalf("the store holds %q %v %v, want 3", v.Value, ok, err)
	}
}

// A compile error reads as the compiler prints it, relative to the function's root.
func TestGoWasmCompileError(t *testing.T) {
	needGo(t)
	src := "package main\n\nimport \"apoxy.dev/apoxy/pkg/edgefunc\"\n\nfunc main() {}\n\nfunc init() {\n\tfoo()\n\tedgefunc.Handle(nil)\n}\n"
	_, err := GoWasm(context.Background(), []File{file("main.go", src), file("lib/lib.go", "package lib\n\nvar X int = \"s\"\n")}, GoOptions{})
	var be *Error
	if !errors.As(err, &be) {
		t.Fatalf("error %v (%T), want a *build.Error", err, err)
	}
	t.Logf("messages: %q", be.Messages)
	joined := strings.Join(be.Messages, "\n")
	if be.Messages[0] != "main.go:8:2: undefined: foo" {
		t.Errorf("first message %q, want main.go:8:2: undefined: foo (all: %q)", be.Messages[0], be.Messages)
	}
	if strings.Contains(joined, os.TempDir()) || strings.Contains(joined, "apoxy-gofn") || strings.Contains(joined, "# ") {
		t.Errorf("messages show the build's internals: %q", be.Messages)
	}

	// In a sub-package, and in the user's go.mod (reported with an absolute path by the go
	// command), the file is named from the function's root too.
	for _, c := range []struct {
		files []File
		want  string
	}{
		{[]File{file("main.go", "package main\n\nimport _ \"edgefunction/lib\"\n\nfunc main() {}\n"), file("lib/lib.go", "package lib\n\nvar X int = \"s\"\n")},
			"lib/lib.go:3:13: cannot use \"s\""},
		{[]File{file("main.go", "package main\n\nfunc main() {}\n"), file("go.mod", "module m\n\ngo 1.24\nbogus\n")},
			"go.mod:4: unknown directive: bogus"},
	} {
		_, err := GoWasm(context.Background(), c.files, GoOptions{})
		if !errors.As(err, &be) {
			t.Fatalf("error %v (%T), want a *build.Error", err, err)
		}
		t.Logf("messages: %q", be.Messages)
		if !slices.ContainsFunc(be.Messages, func(m string) bool { return strings.HasPrefix(m, c.want) }) {
			t.Errorf("messages %q, want one starting %q", be.Messages, c.want)
		}
	}
}

// Cancelling the context kills the build promptly, the compilers it started included.
func TestGoWasmCancel(t *testing.T) {
	needGo(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The marker in the environment finds the build's processes. The cancel comes once the go
	// command has started a compiler (on Linux; elsewhere after 300 ms). An empty cache makes
	// the build compile the runtime, which takes far longer.
	marker := fmt.Sprintf("APOXY_BUILD_TEST=%d", time.Now().UnixNano())
	cancelledAt := make(chan time.Time, 1)
	go func() {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if runtime.GOOS != "linux" || len(processesWith(marker)) >= 2 {
				break
			}
		}
		if runtime.GOOS != "linux" {
			time.Sleep(300 * time.Millisecond)
		}
		cancelledAt <- time.Now()
		cancel()
	}()
	_, err := GoWasm(ctx, []File{file("main.go", filterSrc)}, GoOptions{CacheDir: t.TempDir(), Env: []string{marker}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if d := time.Since(<-cancelledAt); d > 3*time.Second {
		t.Fatalf("GoWasm returned %v after the cancel", d)
	}
	if runtime.GOOS != "linux" {
		return
	}
	time.Sleep(100 * time.Millisecond) // SIGKILL is delivered at once, the exit shortly after
	if left := processesWith(marker); len(left) > 0 {
		t.Fatalf("processes of the cancelled build still run: %q", left)
	}
}

// processesWith lists the command lines of the processes whose environment holds kv.
func processesWith(kv string) []string {
	var found []string
	envs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range envs {
		env, err := os.ReadFile(p)
		if err != nil || !slices.Contains(strings.Split(string(env), "\x00"), kv) {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
		found = append(found, strings.ReplaceAll(string(cmd), "\x00", " "))
	}
	return found
}

// What is not a Go function is refused before the toolchain runs, in words a user follows.
func TestGoWasmRefuses(t *testing.T) {
	for _, c := range []struct {
		name  string
		files []File
		want  string
	}{
		{"no files", nil, "a Go function needs files"},
		{"no Go files", []File{file("index.js", "export default {}")}, "needs .go files"},
		{"not package main", []File{file("main.go", "// Package x.\npackage handler\n")}, "main.go:2:9: package handler: a Go function is package main"},
		{"no root package", []File{file("sub/main.go", "package main\n")}, "no .go file is there"},
		{"escaping path", []File{file("../main.go", "package main\n")}, "must be relative and inside the function"},
		{"the SDK's directory", []File{file("main.go", "package main\n"), file(".apoxy-sdk/x.go", "package x\n")}, "reserved"},
	} {
		_, err := GoWasm(context.Background(), c.files, GoOptions{})
		var be *Error
		if !errors.As(err, &be) || !strings.Contains(be.Error(), c.want) {
			t.Errorf("%s: error %v, want a *build.Error with %q", c.name, err, c.want)
		}
	}
	t.Setenv("PATH", t.TempDir())
	_, err := GoWasm(context.Background(), []File{file("main.go", filterSrc)}, GoOptions{})
	if !errors.Is(err, ErrNoGoToolchain) || !strings.Contains(err.Error(), "goPluginSource.url or .oci") {
		t.Errorf("without go on PATH: %v", err)
	}
}

// The module's size is bounded.
func TestGoWasmMaxOutput(t *testing.T) {
	needGo(t)
	_, err := GoWasm(context.Background(), []File{file("main.go", filterSrc)}, GoOptions{MaxOutputBytes: 1000})
	var be *Error
	if !errors.As(err, &be) || !strings.Contains(be.Error(), "over the limit of 1000") {
		t.Fatalf("error %v, want the module over the limit of 1000", err)
	}
}
