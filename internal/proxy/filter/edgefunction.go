package filter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"

	"apoxy.dev/apoxy/internal/function"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/ratelimit"
	"apoxy.dev/apoxy/internal/telemetry/span"
)

// Functions is what the edge-function stage needs from the process: the code of a revision
// and what its invocations may use. The platform wires it (the artifact store and the
// runtimes); the stage sees only internal/function's types.
type Functions interface {
	// Load loads a revision's built code, ready to invoke. It is called when a configuration
	// naming the revision is compiled, not per request; the result is kept across
	// configuration swaps while some route still runs it.
	Load(ctx context.Context, f *ir.Function) (function.Function, error)
	// Host returns what invocations of f may use: Fetch, KV and Log as its capabilities allow,
	// and its environment. store is the Redis store f.KVStore names, nil when it names none
	// (or one this data plane does not have): KV is then in the process's own store.
	Host(f *ir.Function, store ratelimit.Store) *function.Host
}

// functionLoadTimeout bounds loading one revision while a configuration compiles (a Wasm
// module's first compile is the slow case; the compilation cache makes reloads fast).
const functionLoadTimeout = 30 * time.Second

// functionCloseGrace is how long a revision no longer in the configuration stays loaded
// before it is closed: requests that picked the previous configuration just before the swap
// still start on it. It then closes once its last invocation ends.
var functionCloseGrace = 10 * time.Second

// edgeFunction runs an EdgeFunction revision: a filter answers or passes the request on as
// the function edited it (and may see and edit the response head); a backend answers.
type edgeFunction struct {
	f       *ir.Function
	label   string // function@revision, for the access log
	kept    *keptFunction
	loadErr string
	host    *function.Host
	backend bool
	// obs observe invocations by result (nil: not measured).
	obs map[string]prometheus.Observer
	// attrs are the invocation span's attributes (made once: an unsampled request pays
	// nothing for them).
	attrs []attribute.KeyValue
}

// functionResults are the result label's values.
var functionResults = []string{"pass", "answer", "error", "timeout", "unavailable"}

func (s *edgeFunction) observe(result string, start time.Time) {
	if o := s.obs[result]; o != nil {
		o.Observe(time.Since(start).Seconds())
	}
}

func newEdgeFunction(fl *ir.Filter, _ *ir.Route, env *Env) (Stage, error) {
	f := fl.Function
	if f == nil {
		return nil, errors.New("edge function filter without a function")
	}
	s := &edgeFunction{f: f, label: f.Name + "@" + f.Revision, backend: f.Mode == string(function.ModeBackend),
		attrs: []attribute.KeyValue{attribute.String("apoxy.function", f.Name), attribute.String("apoxy.function.revision", f.Revision),
			attribute.String("apoxy.function.runtime", f.Runtime), attribute.String("apoxy.function.mode", f.Mode)}}
	if env != nil && env.Metrics != nil && env.Metrics.Functions != nil {
		s.obs = map[string]prometheus.Observer{}
		for _, r := range functionResults {
			s.obs[r] = env.Metrics.Functions.WithLabelValues(f.Scope, f.Name, f.Revision, r)
		}
	}
	if env == nil || env.Functions == nil {
		s.loadErr = "edge functions are not enabled in this data plane"
		return s, nil
	}
	var store ratelimit.Store
	if f.KVStore != "" && env.Stores != nil {
		store = env.Stores(f.KVStore)
	}
	s.host = env.Functions.Host(f, store)
	key := "edgefunction|" + f.Scope + "|" + f.Digest + "|" + f.Runtime + "|" + f.Mode + "|" + strconv.FormatInt(int64(f.Timeout), 10) + "|" + f.Config
	k, err := keep(env, key, func() (*keptFunction, error) {
		ctx, cancel := context.WithTimeout(context.Background(), functionLoadTimeout)
		defer cancel()
		fn, err := env.Functions.Load(ctx, f)
		if err != nil {
			return nil, err
		}
		return &keptFunction{fn: fn}, nil
	})
	if err != nil {
		// A revision that cannot load answers 503 on its routes; the rest of the
		// configuration serves (a bad function never takes the data plane down).
		s.loadErr = fmt.Sprintf("loading %s: %v", s.label, err)
		return s, nil
	}
	s.kept = k
	return s, nil
}

func (s *edgeFunction) Serve(x *Exchange) bool {
	x.Function = s.label
	k := s.kept
	start := time.Now()
	if k == nil {
		x.FunctionError = s.loadErr
		s.observe("unavailable", start)
		x.Error("edge function unavailable", http.StatusServiceUnavailable)
		return true
	}
	r := x.Req
	req := function.Request{Method: r.Method, URL: r.URL, Host: r.Host, Header: r.Header, Body: r.Body, RemoteAddr: r.RemoteAddr, Proto: r.Proto}
	if r.Body == http.NoBody {
		req.Body = nil
	}
	k.begin()
	ctx, end := span.Start(r.Context(), "edgefunction", s.attrs...)
	res, err := k.fn.Invoke(ctx, &req, s.host)
	end(err)
	if err != nil {
		k.end()
		x.FunctionError = err.Error()
		code, result := http.StatusInternalServerError, "error"
		if errors.Is(err, function.ErrTimeout) || errors.Is(err, function.ErrMemory) || errors.Is(err, function.ErrClosed) {
			code = http.StatusServiceUnavailable
		}
		if errors.Is(err, function.ErrTimeout) {
			result = "timeout"
		}
		s.observe(result, start)
		x.Error("edge function failed", code)
		return true
	}
	if !res.Pass || s.backend {
		defer k.end() // after a streamed body: the revision's instance makes it
		if res.Pass {
			s.observe("error", start)
			x.FunctionError = "a function in backend mode passed the request on instead of answering"
			x.Error("edge function failed", http.StatusBadGateway)
			return true
		}
		s.observe("answer", start)
		if err := writeFunctionResponse(x.W, res); err != nil {
			// The function's stream failed after its head went out: the client's
			// response is broken off rather than ended as if it were whole.
			x.FunctionError = err.Error()
			panic(http.ErrAbortHandler)
		}
		return true
	}
	s.observe("pass", start)
	// Pass: what goes on is the request as the function left it.
	r.Method, r.Host = req.Method, req.Host
	if req.URL != nil && req.URL != r.URL {
		u := *req.URL
		*r.URL = u
	}
	if req.Header != nil {
		r.Header = req.Header
	}
	if req.Body != nil && req.Body != io.Reader(r.Body) {
		r.Body = io.NopCloser(req.Body)
	}
	if res.Response == nil {
		k.end()
		return false
	}
	h := &functionResponseHook{fn: res.Response, kept: k, ctx: r.Context()}
	x.OnResponse(h)
	x.Defer(h)
	return false
}

// writeFunctionResponse writes a function's answer. A streamed body goes out chunk by
// chunk as the function makes it, each flushed, with no Content-Length; the error is the
// stream's when it failed before its end (the client has the head by then).
func writeFunctionResponse(w http.ResponseWriter, res *function.Result) error {
	h := w.Header()
	for k, v := range res.Header {
		h[k] = v
	}
	code := res.Status
	if code == 0 {
		code = http.StatusOK
	}
	if res.BodyStream != nil {
		defer res.BodyStream.Close()
		h.Del("Content-Length") // the function's own is not to be trusted with a stream
		w.WriteHeader(code)
		return copyFlushing(w, res.BodyStream)
	}
	if h.Get("Content-Length") == "" && code != http.StatusNoContent && code != http.StatusNotModified {
		h.Set("Content-Length", strconv.Itoa(len(res.Body)))
	}
	w.WriteHeader(code)
	if len(res.Body) > 0 {
		w.Write(res.Body)
	}
	return nil
}

// copyFlushing copies a streamed body to the client, flushing after each chunk so that
// what the function made reaches the client at once. A client that went away ends the
// copy without an error (its close stops the function).
func copyFlushing(w http.ResponseWriter, body io.Reader) error {
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil
			}
			if rc.Flush() != nil {
				return nil
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// functionResponseHook hands the response head to a passing filter's response handler,
// exactly once: on the head the client gets, or (Close, when the exchange ends without
// one) as failed. The revision's instance is held until then.
type functionResponseHook struct {
	fn   func(ctx context.Context, status *int, header http.Header, failed bool) error
	kept *keptFunction
	ctx  context.Context
	done bool
}

func (h *functionResponseHook) Response(x *Exchange, hdr http.Header, code int) {
	if h.done {
		return
	}
	h.done = true
	defer h.kept.end()
	c := code
	if err := h.fn(h.ctx, &c, hdr, false); err != nil {
		x.FunctionError = err.Error() // the upstream's answer goes on unedited
		return
	}
	if c != code {
		x.SetResponseStatus(c)
	}
}

func (h *functionResponseHook) Close() error {
	if !h.done {
		h.done = true
		h.fn(h.ctx, nil, nil, true)
		h.kept.end()
	}
	return nil
}

// keptFunction is a loaded revision shared by every configuration that runs it. Closing it
// (when a configuration swap leaves it unused) waits out functionCloseGrace and then its
// invocations in flight, so switching revisions fails no request.
type keptFunction struct {
	fn       function.Function
	inflight atomic.Int64
	closing  atomic.Bool
	once     sync.Once
}

func (k *keptFunction) begin() { k.inflight.Add(1) }

func (k *keptFunction) end() {
	if k.inflight.Add(-1) == 0 && k.closing.Load() {
		k.closeNow()
	}
}

func (k *keptFunction) closeNow() { k.once.Do(func() { k.fn.Close() }) }

// Close starts the graceful close.
func (k *keptFunction) Close() error {
	time.AfterFunc(functionCloseGrace, func() {
		k.closing.Store(true)
		if k.inflight.Load() == 0 {
			k.closeNow()
		}
	})
	return nil
}
