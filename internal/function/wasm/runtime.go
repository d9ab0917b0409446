package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"apoxy.dev/apoxy/internal/function"
)

// ErrNoHandler is returned by Load for a module that does not export handle_request.
var ErrNoHandler = errors.New("wasm: module does not export handle_request")

// Option configures Load.
type Option func(*options)

type options struct {
	cache  wazero.CompilationCache
	dir    string
	config []byte
}

// WithCompilationCache shares a compilation cache between revisions (and runtimes), so a
// module compiled once is not compiled again; the caller closes it.
func WithCompilationCache(c wazero.CompilationCache) Option {
	return func(o *options) { o.cache = c }
}

// WithCompilationCacheDir keeps compiled code in dir, so a restarted gateway does not
// compile a revision again (a Go-built module takes seconds).
func WithCompilationCacheDir(dir string) Option {
	return func(o *options) { o.dir = dir }
}

// WithConfig is what the guest reads with http_handler.get_config.
func WithConfig(config []byte) Option {
	return func(o *options) { o.config = bytes.Clone(config) }
}

// Function is a loaded revision: one compiled module and a pool of its instances. It
// implements function.Function.
type Function struct {
	mode     function.Mode
	limits   function.Limits
	config   []byte
	runtime  wazero.Runtime
	compiled wazero.CompiledModule
	ownCache wazero.CompilationCache // closed with the Function when Load made it
	// exportsResponse: the module exports handle_response, so a passing filter offers
	// Result.Response.
	exportsResponse bool
	pool            *pool

	closeOnce sync.Once
	// closeCtx is cancelled by Close, which cancels every invocation in flight.
	closeCtx    context.Context
	closeCancel context.CancelFunc
}

var _ function.Function = (*Function)(nil)

// Load compiles code (a Wasm module speaking the http-wasm handler ABI) and returns a
// Function serving it in mode within limits. Zero limits take function.DefaultLimits'
// values. Instances are made when invocations need them.
func Load(ctx context.Context, code []byte, mode function.Mode, limits function.Limits, opts ...Option) (*Function, error) {
	if mode != function.ModeFilter && mode != function.ModeBackend {
		return nil, fmt.Errorf("wasm: unknown mode %q", mode)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	limits = limits.WithDefaults()
	f := &Function{mode: mode, limits: limits, config: o.config}
	f.closeCtx, f.closeCancel = context.WithCancel(context.Background())

	cache := o.cache
	if cache == nil {
		var err error
		if o.dir != "" {
			cache, err = wazero.NewCompilationCacheWithDir(o.dir)
			if err != nil {
				return nil, fmt.Errorf("wasm: compilation cache: %w", err)
			}
		} else {
			cache = wazero.NewCompilationCache()
		}
		f.ownCache = cache
	}
	rc := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(memoryPages(limits.MemoryBytes)).
		WithCompilationCache(cache)
	f.runtime = wazero.NewRuntimeWithConfig(ctx, rc)
	fail := func(err error) (*Function, error) {
		f.closeCancel()
		_ = f.runtime.Close(context.Background())
		if f.ownCache != nil {
			_ = f.ownCache.Close(context.Background())
		}
		return nil, err
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, f.runtime); err != nil {
		return fail(fmt.Errorf("wasm: wasi: %w", err))
	}
	if err := instantiateHTTPHandler(ctx, f.runtime); err != nil {
		return fail(fmt.Errorf("wasm: http_handler: %w", err))
	}
	if err := instantiateApoxy(ctx, f.runtime); err != nil {
		return fail(fmt.Errorf("wasm: apoxy: %w", err))
	}
	compiled, err := f.runtime.CompileModule(ctx, code)
	if err != nil {
		return fail(fmt.Errorf("wasm: compile: %w", err))
	}
	exports := compiled.ExportedFunctions()
	hr, ok := exports["handle_request"]
	if !ok {
		return fail(ErrNoHandler)
	}
	if len(hr.ParamTypes()) != 0 || len(hr.ResultTypes()) != 1 || hr.ResultTypes()[0] != api.ValueTypeI64 {
		return fail(errors.New("wasm: handle_request must be () -> i64"))
	}
	if hr, ok := exports["handle_response"]; ok {
		if len(hr.ParamTypes()) != 2 || len(hr.ResultTypes()) != 0 {
			return fail(errors.New("wasm: handle_response must be (i32, i32) -> ()"))
		}
		f.exportsResponse = true
	}
	f.compiled = compiled
	f.pool = newPool(f, limits.MaxInstances)
	return f, nil
}

// memoryPages turns a byte cap into 64 KiB Wasm pages (rounded up, at most 4 GiB).
func memoryPages(b int64) uint32 {
	const page = 64 << 10
	p := (b + page - 1) / page
	if p > 65536 {
		p = 65536
	}
	if p < 1 {
		p = 1
	}
	return uint32(p)
}

// Invoke runs the function on req with the capabilities of host. See function.Function.
//
// It waits for an instance while ctx allows (the wait is not part of Limits.Timeout, which
// bounds handle_request itself, and then handle_response on its own). Host.Env is the
// instance's environ, fixed when it is made, so an idle instance made with another Env is
// replaced. A passing filter's edits are made on req itself. The Result of a guest that
// answers carries what it set and wrote; a passing filter's has Response when the guest
// exports handle_response or enabled buffer_response, and then the instance stays checked
// out until Response is called. In backend mode a guest that passes yields a 502 Result.
func (f *Function) Invoke(ctx context.Context, req *function.Request, host *function.Host) (*function.Result, error) {
	if host == nil {
		host = &function.Host{}
	}
	inst, err := f.pool.acquire(ctx, host.Env)
	if err != nil {
		return nil, err
	}
	inv := newInvocation(f, inst, req, host)
	ret, err := inv.call(ctx, inst.handleRequest)
	if err != nil {
		f.pool.release(inst, false)
		return nil, err
	}
	next, reqCtx := uint32(ret), uint32(ret>>32)
	if next == 0 {
		res := inv.answer()
		inv.finish()
		f.pool.release(inst, true)
		return res, nil
	}
	if f.mode == function.ModeBackend {
		inv.finish()
		f.pool.release(inst, true)
		inv.log(slog.LevelError, "handle_request returned continue in backend mode: there is no next handler")
		return &function.Result{Status: http.StatusBadGateway,
			Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}},
			Body:   []byte("function did not answer\n")}, nil
	}
	inv.passRequest()
	res := &function.Result{Pass: true}
	if inst.handleResponse == nil && inst.features&featureBufferResponse == 0 {
		inv.finish()
		f.pool.release(inst, true)
		return res, nil
	}
	var once sync.Once
	res.Response = func(ctx context.Context, status *int, header http.Header, failed bool) error {
		err := errors.New("wasm: Response called more than once")
		once.Do(func() { err = f.respond(ctx, inv, reqCtx, status, header, failed) })
		return err
	}
	return res, nil
}

// respond runs handle_response (when exported) on the upstream's status and header, then
// returns the instance to the pool.
func (f *Function) respond(ctx context.Context, inv *invocation, reqCtx uint32, status *int, header http.Header, failed bool) error {
	inst := inv.inst
	if inst.handleResponse == nil {
		inv.finish()
		f.pool.release(inst, true)
		return nil
	}
	if header == nil {
		header = http.Header{}
	}
	st := 0
	if status != nil {
		st = *status
	}
	inv.beginResponse(st, header)
	isErr := uint64(0)
	if failed {
		isErr = 1
	}
	_, err := inv.call(ctx, inst.handleResponse, uint64(reqCtx), isErr)
	if err != nil {
		f.pool.release(inst, false)
		return err
	}
	if status != nil {
		*status = inv.upStatus
	}
	inv.finish()
	f.pool.release(inst, true)
	return nil
}

// Close frees every instance and the compiled module; invocations in flight end with
// function.ErrClosed, and later ones fail with it.
func (f *Function) Close() error {
	var err error
	f.closeOnce.Do(func() {
		f.closeCancel()
		f.pool.close()
		err = f.runtime.Close(context.Background())
		if f.ownCache != nil {
			if cerr := f.ownCache.Close(context.Background()); err == nil {
				err = cerr
			}
		}
	})
	return err
}

func (f *Function) closed() bool {
	return f.closeCtx.Err() != nil
}

// callError turns what a guest call ended with into the invocation's error: the failure a
// host function recorded, a timeout, the caller's cancellation, an unload, running out of
// memory, or the trap itself.
func (inv *invocation) callError(callCtx, parent context.Context, err error) error {
	if inv.err != nil {
		return inv.err
	}
	if inv.f.closed() {
		return function.ErrClosed
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return function.ErrTimeout
		case sys.ExitCodeContextCanceled:
			if perr := parent.Err(); perr != nil {
				return perr
			}
			return function.ErrTimeout
		}
	}
	if errors.Is(callCtx.Err(), context.DeadlineExceeded) && parent.Err() == nil {
		return function.ErrTimeout
	}
	if inv.outOfMemory() {
		return fmt.Errorf("%w: %v", function.ErrMemory, err)
	}
	if msg := strings.TrimSpace(inv.stderr.String()); msg != "" {
		return fmt.Errorf("wasm: guest failed: %v: %s", err, msg)
	}
	return fmt.Errorf("wasm: guest failed: %w", err)
}
