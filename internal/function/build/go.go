package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"apoxy.dev/apoxy/pkg/edgefunc"
)

// GoOptions configure GoWasm.
type GoOptions struct {
	// GoBin is the go command to run; "" finds "go" on PATH.
	GoBin string
	// CacheDir is the build cache (GOCACHE) to share between builds, so that a rebuild
	// compiles only the function; "" keeps the toolchain's default.
	CacheDir string
	// Env is added to the build's environment last, overriding what GoWasm sets (GOPROXY,
	// GOPRIVATE, GOMODCACHE, say).
	Env []string
	// MaxOutputBytes bounds the size of the .wasm module; 0 means 64 MiB.
	MaxOutputBytes int64
}

// DefaultMaxGoOutputBytes is the default bound on a Go function's .wasm module.
const DefaultMaxGoOutputBytes = 64 << 20

// ErrNoGoToolchain is GoWasm's error when there is no go command to run: the server can't
// compile Go, and the user can still ship a module built elsewhere.
var ErrNoGoToolchain = errors.New("the Go toolchain was not found on PATH: install Go, or build the module yourself and use goPluginSource.url or .oci")

// sdkDir is where the build holds the embedded pkg/edgefunc, as the module apoxy.dev/apoxy.
// Its leading dot keeps it out of the function's "./..." patterns.
const sdkDir = ".apoxy-sdk"

// maxLogBytes bounds what is kept of the compiler's output.
const maxLogBytes = 256 << 10

// GoWasm compiles a Go edge function to a WebAssembly module for the wasm runtime, with
// GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared. The files are a main package at the
// root (and any packages under it); a go.mod is optional (without one the module is named
// edgefunction). The import apoxy.dev/apoxy/pkg/edgefunc resolves to the server's own copy
// of the package (edgefunc.Source), whatever version a go.mod asks for. Other modules are
// fetched as the go command does (GOPROXY). Compile errors are an *Error whose messages
// read as the compiler prints them, relative to the function's root ("main.go:7:2:
// undefined: foo"). Cancelling ctx kills the build.
func GoWasm(ctx context.Context, files []File, opts GoOptions) ([]byte, error) {
	if err := checkGoFiles(files); err != nil {
		return nil, err
	}
	goBin, err := findGo(opts.GoBin)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "apoxy-gofn-")
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "src")
	hasMod := false
	for _, f := range files {
		p := path.Clean(f.Path)
		hasMod = hasMod || p == "go.mod"
		if err := writeFile(filepath.Join(src, filepath.FromSlash(p)), f.Content); err != nil {
			return nil, err
		}
	}
	env := append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=-mod=mod",
		"GOWORK=off", "GOTOOLCHAIN=local")
	if opts.CacheDir != "" {
		env = append(env, "GOCACHE="+opts.CacheDir)
	}
	env = append(env, opts.Env...)
	goVersion, err := toolchainVersion(ctx, goBin, env)
	if err != nil {
		return nil, err
	}
	if err := writeSDK(filepath.Join(src, sdkDir), goVersion); err != nil {
		return nil, err
	}
	if hasMod {
		out, err := runGo(ctx, goBin, src, env, "mod", "edit", "-require=apoxy.dev/apoxy@v0.0.0", "-replace=apoxy.dev/apoxy=./"+sdkDir)
		if err != nil {
			return nil, compileError(ctx, err, out, tmp)
		}
	} else {
		mod := fmt.Sprintf("module edgefunction\n\ngo %s\n\nrequire apoxy.dev/apoxy v0.0.0\n\nreplace apoxy.dev/apoxy => ./%s\n", goVersion, sdkDir)
		if err := writeFile(filepath.Join(src, "go.mod"), []byte(mod)); err != nil {
			return nil, err
		}
	}
	wasm := filepath.Join(tmp, "out", "function.wasm")
	out, err := runGo(ctx, goBin, src, env, "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", wasm, ".")
	if err != nil {
		return nil, compileError(ctx, err, out, tmp)
	}
	limit := opts.MaxOutputBytes
	if limit <= 0 {
		limit = DefaultMaxGoOutputBytes
	}
	fi, err := os.Stat(wasm)
	if err != nil {
		return nil, fmt.Errorf("build: the go command wrote no module: %w", err)
	}
	if fi.Size() > limit {
		return nil, &Error{Messages: []string{fmt.Sprintf("the compiled module is %d bytes, over the limit of %d", fi.Size(), limit)}}
	}
	return os.ReadFile(wasm)
}

// checkGoFiles refuses what cannot be a Go function, before running anything.
func checkGoFiles(files []File) error {
	if len(files) == 0 {
		return &Error{Messages: []string{"a Go function needs files: none were given"}}
	}
	var goFiles, rootGo int
	for _, f := range files {
		p := path.Clean(f.Path)
		if p == "." || path.IsAbs(f.Path) || p == ".." || strings.HasPrefix(p, "../") {
			return &Error{Messages: []string{fmt.Sprintf("%q: a file's path must be relative and inside the function", f.Path)}}
		}
		if p == sdkDir || strings.HasPrefix(p, sdkDir+"/") {
			return &Error{Messages: []string{fmt.Sprintf("%s: the directory %s is reserved for the edge-function SDK", p, sdkDir)}}
		}
		if !strings.HasSuffix(p, ".go") {
			continue
		}
		goFiles++
		if strings.Contains(p, "/") || strings.HasSuffix(p, "_test.go") {
			continue
		}
		rootGo++
		fset := token.NewFileSet()
		af, err := parser.ParseFile(fset, p, f.Content, parser.PackageClauseOnly)
		if err != nil {
			continue // the compiler reports it, in its own words
		}
		if name := af.Name.Name; name != "main" {
			pos := fset.Position(af.Name.Pos())
			return &Error{Messages: []string{fmt.Sprintf("%s:%d:%d: package %s: a Go function is package main (with edgefunc.Handle in an init function)", p, pos.Line, pos.Column, name)}}
		}
	}
	switch {
	case goFiles == 0:
		return &Error{Messages: []string{"a Go function needs .go files: none were given"}}
	case rootGo == 0:
		return &Error{Messages: []string{"a Go function's package main is at the root of its files: no .go file is there"}}
	}
	return nil
}

// findGo resolves the go command.
func findGo(goBin string) (string, error) {
	if goBin == "" {
		p, err := exec.LookPath("go")
		if err != nil {
			return "", ErrNoGoToolchain
		}
		return p, nil
	}
	p, err := exec.LookPath(goBin)
	if err != nil {
		return "", fmt.Errorf("build: the Go toolchain %q: %w", goBin, err)
	}
	return p, nil
}

// goVersions caches each toolchain's language version ("1.26"), which a go.mod written here
// names.
var goVersions sync.Map

var goVersionRE = regexp.MustCompile(`^go(\d+)\.(\d+)`)

func toolchainVersion(ctx context.Context, goBin string, env []string) (string, error) {
	if v, ok := goVersions.Load(goBin); ok {
		return v.(string), nil
	}
	// Run where no go.mod is (os.TempDir), so that none chooses the toolchain or fails to parse.
	out, err := runGo(ctx, goBin, os.TempDir(), env, "env", "GOVERSION")
	if ctx.Err() != nil {
		return "", fmt.Errorf("build: compiling the Go function: %w", ctx.Err())
	}
	if err != nil {
		return "", fmt.Errorf("build: asking %s its version: %w: %s", goBin, err, bytes.TrimSpace(out))
	}
	m := goVersionRE.FindStringSubmatch(strings.TrimSpace(string(out)))
	if m == nil {
		return "", fmt.Errorf("build: %s reports the version %q", goBin, bytes.TrimSpace(out))
	}
	v := m[1] + "." + m[2]
	goVersions.Store(goBin, v)
	return v, nil
}

// writeSDK writes the embedded pkg/edgefunc (without its tests) as the module
// apoxy.dev/apoxy into dir.
func writeSDK(dir, goVersion string) error {
	if err := writeFile(filepath.Join(dir, "go.mod"), []byte("module apoxy.dev/apoxy\n\ngo "+goVersion+"\n")); err != nil {
		return err
	}
	return fs.WalkDir(edgefunc.Source, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := edgefunc.Source.ReadFile(p)
		if err != nil {
			return err
		}
		return writeFile(filepath.Join(dir, "pkg", "edgefunc", filepath.FromSlash(p)), b)
	})
}

func writeFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	return nil
}

// runGo runs the go command in dir and returns its output (stdout and stderr, bounded).
// Cancelling ctx kills it and every process it started.
func runGo(ctx context.Context, goBin, dir string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	cmd.Env = env
	out := &boundedBuffer{max: maxLogBytes}
	cmd.Stdout, cmd.Stderr = out, out
	killGroupOnCancel(cmd)
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	return out.buf.Bytes(), err
}

// compileError turns a failed go command into the error GoWasm returns: ctx's error when it
// was cancelled, else an *Error with the compiler's messages.
func compileError(ctx context.Context, err error, out []byte, tmp string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("build: compiling the Go function: %w", ctx.Err())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return fmt.Errorf("build: running the go command: %w", err)
	}
	msgs := goMessages(string(out), tmp)
	if len(msgs) == 0 {
		msgs = []string{"the go command failed: " + err.Error()}
	}
	return &Error{Messages: msgs}
}

// goMessages reads the go command's output as the user would: one message per error (with
// its indented continuation lines), paths relative to the function's root, without the
// "# package" headers.
func goMessages(out, tmp string) []string {
	tmps := []string{tmp}
	if real, err := filepath.EvalSymlinks(tmp); err == nil && real != tmp {
		tmps = append(tmps, real) // the go command may print either
	}
	var msgs []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, " \r")
		for _, t := range tmps {
			src := filepath.Join(t, "src")
			line = strings.ReplaceAll(line, src+string(filepath.Separator), "")
			line = strings.ReplaceAll(line, src, ".")
			line = strings.ReplaceAll(line, t+string(filepath.Separator), "")
		}
		switch {
		case line == "" || strings.HasPrefix(line, "# "):
		case strings.HasPrefix(line, "\t") && len(msgs) > 0:
			msgs[len(msgs)-1] += "\n" + line
		default:
			msgs = append(msgs, strings.TrimPrefix(line, "./"))
		}
	}
	return msgs
}

// boundedBuffer keeps the first max bytes written to it and drops the rest.
type boundedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
