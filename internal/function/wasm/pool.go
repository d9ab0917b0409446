package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"apoxy.dev/apoxy/internal/function"
)

// instance is one instantiated module, serving one invocation at a time.
type instance struct {
	mod            api.Module
	handleRequest  api.Function // cached: ExportedFunction per call costs a call engine
	handleResponse api.Function // nil when not exported
	env            map[string]string
	stack          []uint64
	// features are the http-wasm features the guest enabled; they last for the instance's
	// life, since guests commonly enable them once, in their init.
	features uint64
	// cur is the invocation running, for the guest's stdout and stderr.
	cur atomic.Pointer[invocation]
}

// pool holds at most max instances of a Function; idle ones are reused newest first.
type pool struct {
	f      *Function
	sem    chan struct{} // a slot per instance checked out
	mu     sync.Mutex
	idle   []*instance
	closed bool
}

func newPool(f *Function, max int) *pool {
	return &pool{f: f, sem: make(chan struct{}, max)}
}

// acquire checks out an instance whose environment is env, waiting for a free slot while
// ctx allows; an idle instance made with another environment is replaced.
func (p *pool) acquire(ctx context.Context, env map[string]string) (*instance, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.f.closeCtx.Done():
		return nil, function.ErrClosed
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.sem
		return nil, function.ErrClosed
	}
	var inst *instance
	if n := len(p.idle); n > 0 {
		inst = p.idle[n-1]
		p.idle = p.idle[:n-1]
	}
	p.mu.Unlock()
	if inst != nil && maps.Equal(inst.env, env) {
		return inst, nil
	}
	if inst != nil {
		_ = inst.mod.Close(context.Background())
	}
	inst, err := p.f.instantiate(env)
	if err != nil {
		<-p.sem
		if p.f.closed() {
			return nil, function.ErrClosed
		}
		return nil, err
	}
	return inst, nil
}

// release returns inst to the pool, or closes it when it is not healthy (it trapped, timed
// out or was closed) or the pool is closed; a later acquire makes a new one.
func (p *pool) release(inst *instance, healthy bool) {
	inst.cur.Store(nil)
	p.mu.Lock()
	if healthy && !p.closed && !inst.mod.IsClosed() {
		p.idle = append(p.idle, inst)
		healthy = true
	} else {
		healthy = false
	}
	p.mu.Unlock()
	if !healthy {
		_ = inst.mod.Close(context.Background())
	}
	<-p.sem
}

// close closes the idle instances and makes the pool refuse new checkouts.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, inst := range idle {
		_ = inst.mod.Close(context.Background())
	}
}

// instantiate makes an instance with env as its WASI environ. It runs _initialize (a Go
// guest's runtime and package init) on a context of its own (with CloseOnContextDone the
// request's context would close the pooled instance later), bounded by initTimeout.
func (f *Function) instantiate(env map[string]string) (*instance, error) {
	inst := &instance{env: maps.Clone(env), stack: make([]uint64, 2)}
	out := &guestOutput{inst: inst, level: slog.LevelInfo}
	errOut := &guestOutput{inst: inst, level: slog.LevelError, stderr: true}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions("_initialize").
		WithStdout(out).
		WithStderr(errOut).
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(rand.Reader)
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cfg = cfg.WithEnv(k, env[k])
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(f.limits.Timeout, initTimeout))
	defer cancel()
	stop := context.AfterFunc(f.closeCtx, cancel)
	defer stop()
	// The guest's init may read its config, log and enable features: it runs as a request
	// with nothing in it and no capabilities.
	setup := newInvocation(f, inst, &function.Request{Method: http.MethodGet, URL: &url.URL{Path: "/"}}, &function.Host{})
	ctx = context.WithValue(ctx, invocationKey{}, setup)
	inst.cur.Store(setup)
	defer inst.cur.Store(nil)
	mod, err := f.runtime.InstantiateModule(ctx, f.compiled, cfg)
	if err != nil {
		if msg := strings.TrimSpace(setup.stderr.String()); msg != "" {
			return nil, fmt.Errorf("wasm: instantiate: %w: %s", err, msg)
		}
		return nil, fmt.Errorf("wasm: instantiate: %w", err)
	}
	inst.mod = mod
	inst.handleRequest = mod.ExportedFunction("handle_request")
	if f.exportsResponse {
		inst.handleResponse = mod.ExportedFunction("handle_response")
	}
	return inst, nil
}

// initTimeout is the least time an instance's initialisation is given, whatever the
// invocation timeout: a Go guest's runtime init takes milliseconds, far longer on a loaded
// host (or under the race detector), and it is not the request's own work.
const initTimeout = 10 * time.Second

// guestOutput sends a guest's stdout or stderr, a line at a time, to the Host.Log of the
// invocation running on the instance; stderr is also kept (bounded) to explain a failure.
type guestOutput struct {
	inst   *instance
	level  slog.Level
	stderr bool
}

func (g *guestOutput) Write(b []byte) (int, error) {
	inv := g.inst.cur.Load()
	if inv == nil {
		return len(b), nil
	}
	if g.stderr && inv.stderr.Len() < maxStderr {
		inv.stderr.Write(b[:min(len(b), maxStderr-inv.stderr.Len())])
	}
	if inv.host.Log != nil {
		for _, line := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
			inv.host.Log(g.level, string(line))
		}
	}
	return len(b), nil
}

// maxStderr bounds the guest's stderr kept per invocation.
const maxStderr = 4 << 10
