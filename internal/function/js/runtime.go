// Package js runs JavaScript edge functions on QuickJS (modernc.org/quickjs, pure Go): one
// bundled ES module per revision, whose default export handles requests with a
// Workers-compatible surface (Request, Response, Headers, fetch, env.KV, …) defined by an
// embedded prelude. Each VM has its own heap, capped by Limits.MemoryBytes and kept off the Go
// GC, and is preempted at Limits.Timeout; VMs are pooled per revision.
package js

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"modernc.org/quickjs"

	"apoxy.dev/apoxy/internal/function"
)

//go:embed prelude.js
var preludeSource string

// moduleName is the one module name the loader serves: the function's bundle. Other
// imports are refused, as the bundle is meant to be self-contained.
const moduleName = "user:fn"

// loadScript imports the bundle and hands its default export to the prelude, which
// checks that it has a fetch or request handler.
const loadScript = `import("` + moduleName + `").then((m) => __setModule(m.default), (e) => __loadFailed(e));`

// fn is a loaded revision: its source, its compiled prelude and a pool of VMs.
type fn struct {
	mode    function.Mode
	limits  function.Limits
	module  string
	prelude []byte // bytecode of prelude.js, compiled once per Load
	pool    *pool
}

// Load compiles a revision's bundled ES module and checks that it loads: a syntax error, a
// throw at the module's top level or a default export without a fetch or request method is
// an error here, with the engine's message and line. The module's top level runs within
// limits.Timeout, and ctx can stop it too. The VM that checked it is the first of the pool.
func Load(ctx context.Context, module []byte, mode function.Mode, limits function.Limits) (function.Function, error) {
	if mode != function.ModeFilter && mode != function.ModeBackend {
		return nil, fmt.Errorf("js: unknown mode %q", mode)
	}
	limits = limits.WithDefaults()
	f := &fn{mode: mode, limits: limits, module: string(module)}
	vm, err := quickjs.NewVM()
	if err != nil {
		return nil, fmt.Errorf("js: new VM: %w", err)
	}
	f.prelude, err = vm.Compile(preludeSource, quickjs.EvalGlobal)
	vm.Close()
	if err != nil {
		return nil, fmt.Errorf("js: compiling the prelude: %w", err)
	}
	f.pool = newPool(limits.MaxInstances, f.newInstance)
	inst, err := f.newInstanceCtx(ctx)
	if err != nil {
		f.pool.Close()
		return nil, err
	}
	f.pool.add(inst)
	return f, nil
}

// abandonAfter is how long past an invocation's deadline Invoke waits for the engine to
// notice its interrupt. QuickJS polls for interrupts every few thousand bytecode steps, so a
// loop whose every step is a long native call (filling a large array, parsing a large JSON
// text) can run well past its deadline; the caller is answered at the deadline plus this
// grace, and the VM is discarded whenever it stops.
const abandonAfter = 100 * time.Millisecond

// outcome is what an invocation's goroutine hands back to Invoke.
type outcome struct {
	res  *function.Result
	keep bool
	rest func() bool
	err  error
}

// deadline is when an invocation that starts now must end.
func (f *fn) deadline(ctx context.Context) time.Time {
	deadline := time.Now().Add(f.limits.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return deadline
}

// Invoke runs one request on a pooled VM. A VM whose invocation failed is discarded. The
// engine runs on a goroutine of its own so that the caller is answered by the deadline even
// when the engine is slow to notice it (abandonAfter); it sees a copy of req, copied back
// when it finishes in time, so an abandoned invocation never touches the caller's request.
// When the module has a response handler, a passing filter's Result has Response, and the
// VM stays checked out until it is called.
func (f *fn) Invoke(ctx context.Context, req *function.Request, host *function.Host) (*function.Result, error) {
	inst, err := f.pool.get(ctx)
	if err != nil {
		return nil, err
	}
	own := *req
	var body *guardedBody
	if req.Body != nil {
		body = &guardedBody{r: req.Body}
		own.Body = body
	}
	o, err := inst.call(f.deadline(ctx), body, host, func() outcome {
		res, keep, rest, err := inst.invoke(ctx, &own, host)
		return outcome{res, keep, rest, err}
	})
	if err != nil {
		return nil, err // abandoned at the deadline
	}
	res, err := o.res, o.err
	req.Method, req.URL, req.Host, req.Header = own.Method, own.URL, own.Host, own.Header
	if own.Body != io.Reader(body) {
		req.Body = own.Body // what the function read, then the rest
	}
	if err == nil && res.Pass && inst.hasResponse && f.mode == function.ModeFilter {
		keep := o.keep
		if o.rest != nil {
			// The request's ctx.waitUntil promises settle before the response phase, which
			// has its own.
			keep = o.rest()
		}
		if !keep {
			f.pool.put(inst, false)
			return res, nil
		}
		head := *req
		var once sync.Once
		res.Response = func(ctx context.Context, status *int, header http.Header, failed bool) error {
			err := errors.New("js: Response called more than once")
			once.Do(func() { err = f.respond(ctx, inst, &head, status, header, failed, host) })
			return err
		}
		return res, nil
	}
	return res, f.finish(inst, o, host)
}

// finish ends an invocation that ran in time: it logs its error, and returns the VM to the
// pool (after its ctx.waitUntil promises, on another goroutine, when there are some).
func (f *fn) finish(inst *instance, o outcome, host *function.Host) error {
	err := o.err
	if f.pool.isClosed() && err != nil {
		err = function.ErrClosed
	}
	if err != nil && host != nil && host.Log != nil {
		// The runtime's own errors go to the function's log too, for `apoxy logs`.
		host.Log(slog.LevelError, err.Error())
	}
	if o.rest != nil {
		// ctx.waitUntil: answer now, keep the VM until its promises settle.
		go func() { f.pool.put(inst, o.rest()) }()
		return err
	}
	f.pool.put(inst, o.keep)
	return err
}

// respond runs the response handler on the upstream's head (unless there is none, failed)
// and applies what it returned to status and header.
func (f *fn) respond(ctx context.Context, inst *instance, req *function.Request, status *int, header http.Header, failed bool, host *function.Host) error {
	if failed || status == nil || header == nil {
		f.pool.put(inst, true)
		return nil
	}
	st := *status
	o, err := inst.call(f.deadline(ctx), nil, host, func() outcome {
		res, keep, rest, err := inst.respond(ctx, req, st, header, host)
		return outcome{res, keep, rest, err}
	})
	if err != nil {
		return err
	}
	if o.err == nil {
		if o.res.Status != 0 {
			*status = o.res.Status
		}
		if o.res.Header != nil {
			clear(header)
			maps.Copy(header, o.res.Header)
		}
	}
	return f.finish(inst, o, host)
}

// call runs job on inst's goroutine and waits for it until deadline plus abandonAfter. Past
// that, the invocation is abandoned: body (when not nil) fails the engine's later reads, the
// VM is discarded whenever the engine stops, and the error is function.ErrTimeout.
func (inst *instance) call(deadline time.Time, body *guardedBody, host *function.Host, job func() outcome) (outcome, error) {
	if inst.done == nil {
		inst.done = make(chan outcome, 1)
		inst.timer = time.NewTimer(time.Until(deadline) + abandonAfter)
	} else {
		inst.timer.Reset(time.Until(deadline) + abandonAfter)
	}
	done, timer := inst.done, inst.timer
	inst.submit(func() { done <- job() })
	select {
	case o := <-done:
		timer.Stop()
		return o, nil
	case <-timer.C:
		if body == nil || body.mu.TryLock() {
			if body != nil {
				body.dead = true // a later read by the VM fails; the caller owns the body again
				body.mu.Unlock()
			}
			go func() {
				<-done
				inst.f.pool.put(inst, false)
			}()
			err := fmt.Errorf("%w: the engine did not stop at the deadline; its VM is discarded", function.ErrTimeout)
			if host != nil && host.Log != nil {
				host.Log(slog.LevelError, err.Error())
			}
			return outcome{}, err
		}
		// The VM is reading the request body from the client: the read ends with the
		// connection's own body timeout, then the invocation does.
		return <-done, nil
	}
}

// guardedBody is the request body as an invocation's goroutine reads it: once Invoke has
// abandoned the invocation, reads fail rather than race with the caller's.
type guardedBody struct {
	mu   sync.Mutex
	r    io.Reader
	dead bool
}

func (g *guardedBody) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dead {
		return 0, errors.New("js: the invocation was abandoned at its deadline")
	}
	return g.r.Read(p)
}

// Close frees the idle VMs and interrupts the busy ones, whose invocations end with
// function.ErrClosed; it waits for them to be freed.
func (f *fn) Close() error {
	f.pool.Close()
	return nil
}

// instance is one VM with the prelude and the module loaded. It runs one invocation at a
// time, on a goroutine of its own (submit).
type instance struct {
	f           *fn
	vm          *quickjs.VM
	dispatch    quickjs.Value
	setEnvFn    quickjs.Value     // __setEnv
	respondFn   quickjs.Value     // __respond
	hasResponse bool              // the module's default export has a response method
	env         map[string]string // the environment the engine has (setEnv)
	inv         *invocation       // the invocation running, nil between them
	loadErr     string            // why the module did not load
	loaded      bool              // the prelude has the module's default export
	mu          sync.Mutex        // guards closed against Interrupt from Close
	closed      bool
	// work feeds the instance's goroutine (submit); nil until the first invocation. Only
	// the goroutine holding the instance (from the pool) touches it, and done and timer,
	// which Invoke reuses from one invocation to the next (an abandoned VM is discarded).
	work  chan func()
	done  chan outcome
	timer *time.Timer
}

// newInstance makes a VM: limits, host functions, prelude, module.
func (f *fn) newInstance() (*instance, error) { return f.newInstanceCtx(context.Background()) }

// newInstanceCtx is newInstance whose loading ctx can interrupt.
func (f *fn) newInstanceCtx(ctx context.Context) (*instance, error) {
	vm, err := quickjs.NewVM()
	if err != nil {
		return nil, fmt.Errorf("js: new VM: %w", err)
	}
	inst := &instance{f: f, vm: vm}
	stop := context.AfterFunc(ctx, inst.interrupt)
	err = inst.init(ctx)
	stop()
	if err != nil {
		vm.Close()
		return nil, err
	}
	return inst, nil
}

func (inst *instance) init(ctx context.Context) (err error) {
	vm, f := inst.vm, inst.f
	vm.SetMemoryLimit(uintptr(f.limits.MemoryBytes))
	deadline := time.Now().Add(f.limits.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	defer func() {
		// A load the deadline interrupted (a slow top level, or a new VM made for a request
		// on a starved machine) is a timeout, not the function's error.
		if err != nil && !errors.Is(err, function.ErrTimeout) && !time.Now().Before(deadline) {
			err = fmt.Errorf("%w: %v", function.ErrTimeout, err)
		}
	}()
	// arm is checked before each call into the engine, which clears an interrupt that came
	// before the call: the eval timeout covers the rest.
	arm := func() error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("js: load: %w", err)
		}
		return vm.SetEvalTimeout(max(time.Until(deadline), time.Millisecond))
	}
	if err := inst.registerHost(); err != nil {
		return fmt.Errorf("js: host functions: %w", err)
	}
	if err := arm(); err != nil {
		return err
	}
	if _, err := vm.EvalBytecode(f.prelude); err != nil {
		return fmt.Errorf("js: prelude: %w", err)
	}
	vm.SetModuleLoader(func(_ *quickjs.VM, name string) (string, error) {
		if name != moduleName {
			return "", fmt.Errorf("cannot import %q: a function is one bundled module", name)
		}
		return f.module, nil
	}, nil)
	if err := arm(); err != nil {
		return err
	}
	if _, err := vm.Eval(loadScript, quickjs.EvalGlobal); err != nil {
		return fmt.Errorf("js: load: %w", err)
	}
	if err := arm(); err != nil {
		return err
	}
	if _, err := vm.ExecutePendingJobs(); err != nil {
		return fmt.Errorf("js: load: %w", err)
	}
	if inst.loadErr != "" {
		return fmt.Errorf("js: load: %s", inst.loadErr)
	}
	if !inst.loaded {
		return errors.New("js: load: the module's top level awaits a promise that can never settle")
	}
	g := vm.GlobalObject()
	defer g.Free()
	atom, err := vm.NewAtom("__dispatch")
	if err != nil {
		return err
	}
	if inst.dispatch, err = g.GetPropertyValue(atom); err != nil {
		return err
	}
	if atom, err = vm.NewAtom("__setEnv"); err != nil {
		return err
	}
	if inst.setEnvFn, err = g.GetPropertyValue(atom); err != nil {
		return err
	}
	if atom, err = vm.NewAtom("__respond"); err != nil {
		return err
	}
	inst.respondFn, err = g.GetPropertyValue(atom)
	return err
}

// close frees the VM. Promises still owned by Go (host calls in flight) are released first,
// as the engine must not be torn down with references it does not know about.
// submit runs job on the instance's own goroutine, started on first use and kept for the
// VM's life: the interpreter needs a deep stack, which a fresh goroutine per invocation
// would grow again each time (that doubled an invocation's cost).
func (inst *instance) submit(job func()) {
	if inst.work == nil {
		inst.work = make(chan func())
		go func(work chan func()) {
			for job := range work {
				job()
			}
		}(inst.work)
	}
	inst.work <- job
}

func (inst *instance) close() {
	inst.mu.Lock()
	inst.closed = true
	inst.mu.Unlock()
	if inst.work != nil {
		close(inst.work)
		inst.work = nil
	}
	if inst.inv != nil {
		inst.inv.release()
		inst.inv = nil
	}
	for _, v := range []quickjs.Value{inst.dispatch, inst.setEnvFn, inst.respondFn} {
		if v.VM() != nil {
			v.Free()
		}
	}
	inst.vm.Close()
}

// interrupt stops the JavaScript running on inst, from any goroutine.
func (inst *instance) interrupt() {
	inst.mu.Lock()
	if !inst.closed {
		inst.vm.Interrupt()
	}
	inst.mu.Unlock()
}

// errorKind maps an engine error to the function errors the gateway knows.
func errorKind(ctx context.Context, msg string) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return function.ErrTimeout
	case strings.Contains(msg, "out of memory"):
		return function.ErrMemory
	case strings.HasPrefix(msg, "InternalError: interrupted"):
		// The engine's eval timeout, armed to the same deadline, fired a moment before
		// the context's.
		return function.ErrTimeout
	}
	return nil
}
