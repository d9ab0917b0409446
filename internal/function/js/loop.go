package js

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"modernc.org/quickjs"

	"apoxy.dev/apoxy/internal/function"
)

// invocation is the state of one request on an instance: what the host functions lend it,
// and the event loop's bookkeeping.
type invocation struct {
	ctx        context.Context // ends at the invocation's deadline or when it is over
	cancel     context.CancelFunc
	stopParent func() bool // detaches ctx from the caller's
	req        *function.Request
	host       *function.Host
	limits     function.Limits

	// completions carries the results of host calls (fetch, KV) finished on other
	// goroutines back to the VM's goroutine, as closures to run there. It and pending are
	// made by the first host call, as most invocations make none.
	completions chan func()
	inflight    int
	pending     map[*quickjs.PromiseCapability]struct{}

	settled   bool
	result    string
	waits     bool // ctx.waitUntil promises still to settle after the result
	waitsDone bool

	body        []byte
	bodyRead    bool
	bodyDone    bool        // readBodyChunk met the body's end
	stream      *bodyStream // a streamed response body, once the function answered with one
	bodyErr     error
	fetchCount  atomic.Int64
	fetchBudget atomic.Int64 // response bytes the fetches may still read
}

// release frees the promises whose host calls are still in flight and ends the
// invocation's context, so that their goroutines give up.
func (inv *invocation) release() {
	inv.stopParent()
	inv.cancel()
	if inv.stream != nil {
		inv.stream.end(errStreamCut) // no-op when it ended
	}
	for pc := range inv.pending {
		pc.Resolve.Free()
		pc.Reject.Free()
	}
	inv.pending = nil
}

// wireResult is what __dispatch settles with.
type wireResult struct {
	Pass    bool                `json:"pass"`
	Method  string              `json:"method"`
	URL     *string             `json:"url"`
	Headers map[string][]string `json:"headers"`
	Status  int                 `json:"status"`
	Body    string              `json:"body"`
	Bin     bool                `json:"bin"`
	Error   *string             `json:"error"`
	OOM     bool                `json:"oom"`
	Stack   string              `json:"stack"`
}

// fullURL is the request's absolute URL, as Request.url shows it.
func fullURL(req *function.Request) string {
	if req.URL == nil {
		return "http://" + req.Host + "/"
	}
	u := *req.URL
	if u.Scheme == "" {
		u.Scheme = "http"
	}
	if u.Host == "" {
		u.Host = req.Host
	}
	return u.String()
}

// invoke runs one request. keep reports whether the VM may serve another. When the function
// left ctx.waitUntil promises, rest is non-nil: the caller runs it, after answering, to
// settle them, and it reports keep.
func (inst *instance) invoke(ctx context.Context, req *function.Request, host *function.Host) (_ *function.Result, keep bool, rest func() bool, _ error) {
	if host == nil {
		host = &function.Host{}
	}
	return inst.phase(ctx, req, host, func() error {
		if err := inst.setEnv(host.Env); err != nil {
			return err
		}
		_, err := inst.dispatch.Call(quickjs.UndefinedValue, req.Method, fullURL(req), wireHeaders(req.Header), req.Body != nil)
		return err
	}, func(r *wireResult) (*function.Result, error) { return inst.result(r, req) })
}

// respond runs the module's response handler on the upstream's response head, after a
// passing invoke on the same VM. The Result's Status and Header are the head to send, or
// zero and nil when the handler left it as it was.
func (inst *instance) respond(ctx context.Context, req *function.Request, status int, header http.Header, host *function.Host) (_ *function.Result, keep bool, rest func() bool, _ error) {
	if host == nil {
		host = &function.Host{}
	}
	head := *req
	head.Body = nil // gone upstream
	return inst.phase(ctx, &head, host, func() error {
		_, err := inst.respondFn.Call(quickjs.UndefinedValue, status, wireHeaders(header))
		return err
	}, func(r *wireResult) (*function.Result, error) {
		if r.Pass {
			return &function.Result{}, nil
		}
		if r.Status < 100 || r.Status > 999 {
			return nil, fmt.Errorf("js: the response handler set status %d", r.Status)
		}
		return &function.Result{Status: r.Status, Header: canonicalHeader(r.Headers)}, nil
	})
}

// phase runs one call into the module (start) and the event loop until it settles, then
// decodes its outcome. The engine's own failures, timeouts and memory exhaustion come back as
// the errors of package function.
func (inst *instance) phase(ctx context.Context, req *function.Request, host *function.Host, start func() error,
	decode func(*wireResult) (*function.Result, error)) (_ *function.Result, keep bool, rest func() bool, _ error) {
	limits := inst.f.limits
	deadline := time.Now().Add(limits.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// The invocation's context outlives the caller's for ctx.waitUntil, up to the deadline;
	// until the result, a cancelled caller cancels it.
	ictx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	stopParent := context.AfterFunc(ctx, cancel)
	stopIntr := context.AfterFunc(ictx, inst.interrupt)
	inv := &invocation{ctx: ictx, cancel: cancel, stopParent: stopParent, req: req, host: host, limits: limits}
	inv.fetchBudget.Store(limits.MaxFetchBytes)
	inst.inv = inv
	end := func(keep bool) bool {
		// An interrupt that fired, or is firing, could land in the VM's next invocation:
		// such a VM goes.
		if !stopIntr() {
			keep = false
		}
		inv.release()
		inst.inv = nil
		return keep
	}
	ended := false
	defer func() {
		if !ended {
			keep = end(keep)
		}
	}()

	if err := inst.arm(); err != nil {
		return nil, false, nil, err
	}
	if err := start(); err != nil {
		return nil, false, nil, inst.failure(err.Error())
	}
	if err := inst.run(func() bool { return inv.settled }); err != nil {
		return nil, false, nil, err
	}
	stopParent()

	var r wireResult
	if inv.result == "" {
		r.Pass = true // unchanged: the request passes, the response head stays
	} else if err := json.Unmarshal([]byte(inv.result), &r); err != nil {
		return nil, false, nil, fmt.Errorf("js: decoding the result: %w", err)
	}
	if r.Error != nil {
		msg := *r.Error
		if r.OOM {
			return nil, false, nil, fmt.Errorf("%w: %s", function.ErrMemory, msg)
		}
		if k := errorKind(ictx, msg); k != nil {
			return nil, false, nil, fmt.Errorf("%w: %s", k, msg)
		}
		if r.Stack != "" {
			msg += "\n" + r.Stack
		}
		return nil, false, nil, fmt.Errorf("js: %s", msg)
	}
	res, err := decode(&r)
	if err != nil {
		return nil, false, nil, err
	}
	if inv.stream != nil {
		res.Body, res.BodyStream = nil, inv.stream
	}
	if inv.waits || inv.stream != nil {
		// The caller now owns req: a body the function did not read stays unread.
		frozen := *req
		if !inv.bodyRead {
			frozen.Body = nil
		}
		inv.req = &frozen
		ended = true
		return res, true, func() bool {
			err := inst.run(func() bool {
				return (!inv.waits || inv.waitsDone) && (inv.stream == nil || inv.stream.ended)
			})
			if err != nil && host.Log != nil {
				// The answer stands (a streamed one ends early); the VM that could not
				// finish goes.
				what := "ctx.waitUntil: "
				if inv.stream != nil && !inv.stream.ended {
					what = "the response stream: "
				}
				host.Log(slog.LevelWarn, what+err.Error())
			}
			return end(err == nil)
		}, nil
	}
	return res, true, nil, nil
}

// canonicalHeader makes the engine's lower-case header names canonical.
func canonicalHeader(w map[string][]string) http.Header {
	h := make(http.Header, len(w))
	for k, v := range w {
		h[textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	return h
}

// result turns the settled wire result into a function.Result, applying a passing filter's
// edits to req.
func (inst *instance) result(r *wireResult, req *function.Request) (*function.Result, error) {
	if r.Pass {
		if inst.f.mode == function.ModeBackend {
			return nil, errors.New("js: a backend function must return a Response, it returned nothing")
		}
		if r.Method != "" {
			req.Method = r.Method
		}
		if r.URL != nil {
			u, err := url.Parse(*r.URL)
			if err != nil {
				return nil, fmt.Errorf("js: the request's new url: %w", err)
			}
			if u.Host != "" {
				req.Host = u.Host
			}
			req.URL = &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
		}
		if r.Headers != nil {
			h := canonicalHeader(r.Headers)
			// A Host header the function set is the request's authority.
			if host := h.Get("Host"); host != "" {
				req.Host = host
			}
			delete(h, "Host")
			req.Header = h
		}
		if inst.inv.bodyRead && req.Body != nil {
			// What the function read, then what it did not (past the limit).
			req.Body = io.MultiReader(bytes.NewReader(inst.inv.body), req.Body)
		}
		return &function.Result{Pass: true}, nil
	}
	body := []byte(r.Body)
	if r.Bin {
		body = latin1Bytes(r.Body)
	}
	if int64(len(body)) > inst.f.limits.MaxBodyBytes {
		return nil, fmt.Errorf("%w: the response body is %d bytes", function.ErrTooLarge, len(body))
	}
	return &function.Result{Status: r.Status, Header: canonicalHeader(r.Headers), Body: body}, nil
}

// run is the event loop: it drains the VM's jobs, then waits for a host call to finish and
// runs its completion, until done reports true, the deadline passes or nothing is left that
// could make progress.
func (inst *instance) run(done func() bool) error {
	inv := inst.inv
	for {
		if err := inst.arm(); err != nil {
			return err
		}
		if _, err := inst.vm.ExecutePendingJobs(); err != nil {
			return inst.failure(err.Error())
		}
		if done() {
			return nil
		}
		if inv.inflight == 0 {
			return errors.New("js: the function awaits a promise that can never settle")
		}
		select {
		case f := <-inv.completions:
			inv.inflight--
			if err := inst.arm(); err != nil {
				return err
			}
			f()
		case <-inv.ctx.Done():
			return inst.failure("")
		case <-inst.f.pool.done:
			return function.ErrClosed
		}
	}
}

// arm sets the engine's eval timeout to what is left of the invocation's, as the engine
// re-arms it on each call into JavaScript.
func (inst *instance) arm() error {
	select {
	case <-inst.f.pool.done:
		return function.ErrClosed
	default:
	}
	if err := inst.inv.ctx.Err(); err != nil {
		return inst.failure("")
	}
	d, _ := inst.inv.ctx.Deadline()
	return inst.vm.SetEvalTimeout(max(time.Until(d), time.Millisecond))
}

// failure names what ended an invocation from the engine's message and the context.
func (inst *instance) failure(msg string) error {
	select {
	case <-inst.f.pool.done:
		return function.ErrClosed
	default:
	}
	if k := errorKind(inst.inv.ctx, msg); k != nil {
		if msg == "" {
			return k
		}
		return fmt.Errorf("%w: %s", k, msg)
	}
	if err := inst.inv.ctx.Err(); err != nil {
		return fmt.Errorf("js: %w", err)
	}
	return fmt.Errorf("js: %s", msg)
}

// wireHeaders is a request's header as __dispatch reads it: "name\x00value\x00…", names in
// lower case, one pair per value. Cheaper than JSON both to make and to parse in the engine,
// which parses it only when the function looks at a header.
func wireHeaders(h http.Header) string {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 2
		}
	}
	var b strings.Builder
	b.Grow(n)
	for k, vs := range h {
		for _, v := range vs {
			if b.Len() > 0 {
				b.WriteByte(0)
			}
			for i := 0; i < len(k); i++ {
				c := k[i]
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				b.WriteByte(c)
			}
			b.WriteByte(0)
			// A NUL in a value would split it; HTTP forbids it, so drop it.
			b.WriteString(strings.ReplaceAll(v, "\x00", ""))
		}
	}
	return b.String()
}

// setEnv hands the engine the revision's environment when it is not the one it has.
func (inst *instance) setEnv(env map[string]string) error {
	if len(env) == 0 && len(inst.env) == 0 {
		return nil
	}
	if len(env) > 0 && len(inst.env) > 0 && reflect.ValueOf(env).UnsafePointer() == reflect.ValueOf(inst.env).UnsafePointer() {
		return nil
	}
	if env == nil {
		env = map[string]string{}
	}
	w, err := json.Marshal(env)
	if err != nil {
		return err
	}
	if _, err := inst.setEnvFn.Call(quickjs.UndefinedValue, string(w)); err != nil {
		return inst.failure(err.Error())
	}
	inst.env = env
	return nil
}

// latin1Bytes decodes a string whose characters are bytes (U+0000-U+00FF), the way the
// prelude carries binary bodies.
func latin1Bytes(s string) []byte {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte(r))
	}
	return b
}

// latin1String encodes bytes as such a string.
func latin1String(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}
