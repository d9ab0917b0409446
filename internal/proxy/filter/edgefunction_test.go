package filter

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/function"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/ratelimit"
)

// goFunction is a function.Function written in Go: the stage's contract is the interface,
// and this implements it as a runtime would.
type goFunction struct {
	fn     func(ctx context.Context, req *function.Request, host *function.Host) (*function.Result, error)
	closed atomic.Bool
}

func (g *goFunction) Invoke(ctx context.Context, req *function.Request, host *function.Host) (*function.Result, error) {
	if g.closed.Load() {
		return nil, function.ErrClosed
	}
	return g.fn(ctx, req, host)
}
func (g *goFunction) Close() error { g.closed.Store(true); return nil }

// functions loads goFunctions by digest.
type functions struct {
	byDigest map[string]*goFunction
	loads    atomic.Int32
}

func (f *functions) Load(_ context.Context, fn *ir.Function) (function.Function, error) {
	f.loads.Add(1)
	g, ok := f.byDigest[fn.Digest]
	if !ok {
		return nil, errors.New("artifact: not found")
	}
	return g, nil
}
func (f *functions) Host(fn *ir.Function, _ ratelimit.Store) *function.Host {
	return &function.Host{Env: fn.Env}
}

func fnRoute(digest, mode string) *ir.Route {
	return prefixRoute("/", ir.Filter{Type: ir.FilterEdgeFunction, Function: &ir.Function{Name: "default/f", Revision: "f-1", Digest: digest, Runtime: "js", Mode: mode}})
}

func TestEdgeFunctionStage(t *testing.T) {
	var hooked []string
	fns := &functions{byDigest: map[string]*goFunction{
		"pass": {fn: func(_ context.Context, req *function.Request, host *function.Host) (*function.Result, error) {
			req.Method = "POST"
			req.URL = &url.URL{Path: "/rewritten", RawQuery: "a=1"}
			req.Header.Set("X-Edge", host.Env["K"])
			req.Host = "other.example.com"
			return &function.Result{Pass: true, Response: func(_ context.Context, status *int, h http.Header, failed bool) error {
				if failed {
					hooked = append(hooked, "failed")
					return nil
				}
				hooked = append(hooked, "head")
				h.Set("X-Seen", "1")
				*status = http.StatusAccepted
				return nil
			}}, nil
		}},
		"answer": {fn: func(context.Context, *function.Request, *function.Host) (*function.Result, error) {
			return &function.Result{Status: 418, Header: http.Header{"X-A": {"b"}}, Body: []byte("teapot")}, nil
		}},
		"throws": {fn: func(context.Context, *function.Request, *function.Host) (*function.Result, error) {
			return nil, errors.New("js: boom")
		}},
		"timeout": {fn: func(context.Context, *function.Request, *function.Host) (*function.Result, error) {
			return nil, function.ErrTimeout
		}},
		"passes": {fn: func(context.Context, *function.Request, *function.Host) (*function.Result, error) {
			return &function.Result{Pass: true}, nil
		}},
	}}
	env := &Env{Functions: fns}
	compile := func(rt *ir.Route) Chain {
		rt.Filters[0].Function.Env = map[string]string{"K": "v"}
		c, err := Compile(rt, env)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// A filter that passes: the request goes on as it left it, and its hook edits the head.
	c := compile(fnRoute("pass", "filter"))
	r := httptest.NewRequest("GET", "http://h/orig", nil)
	x, rec := exchange(r, anyRoute)
	if c.Run(x) {
		t.Fatal("a passing filter answered")
	}
	if x.Req.Method != "POST" || x.Req.URL.Path != "/rewritten" || x.Req.URL.RawQuery != "a=1" || x.Req.Host != "other.example.com" || x.Req.Header.Get("X-Edge") != "v" {
		t.Fatalf("request after the filter: %s %s %s %v", x.Req.Method, x.Req.URL, x.Req.Host, x.Req.Header)
	}
	x.W.WriteHeader(200)
	x.Finish()
	if rec.Code != http.StatusAccepted || rec.Header().Get("X-Seen") != "1" || len(hooked) != 1 || hooked[0] != "head" {
		t.Fatalf("response: %d %v, hook calls %v", rec.Code, rec.Header(), hooked)
	}
	if x.Function != "default/f@f-1" || x.FunctionError != "" {
		t.Fatalf("access-log fields %q %q", x.Function, x.FunctionError)
	}
	// An exchange that ends without a head still calls the hook, once, as failed.
	hooked = nil
	x, _ = exchange(httptest.NewRequest("GET", "http://h/", nil), anyRoute)
	c.Run(x)
	x.Finish()
	if len(hooked) != 1 || hooked[0] != "failed" {
		t.Fatalf("hook calls without a head: %v", hooked)
	}

	for _, tc := range []struct {
		digest, mode string
		code         int
		err          string
	}{
		{"answer", "filter", 418, ""},
		{"answer", "backend", 418, ""},
		{"throws", "filter", 500, "js: boom"},
		{"timeout", "backend", 503, "function: timed out"},
		{"passes", "backend", 502, "a function in backend mode passed the request on instead of answering"},
		{"missing", "filter", 503, "loading default/f@f-1: artifact: not found"},
	} {
		c := compile(fnRoute(tc.digest, tc.mode))
		x, rec := exchange(httptest.NewRequest("GET", "http://h/", nil), anyRoute)
		if !c.Run(x) {
			t.Fatalf("%s/%s did not answer", tc.digest, tc.mode)
		}
		x.Finish()
		if rec.Code != tc.code || x.FunctionError != tc.err {
			t.Errorf("%s/%s: %d %q, want %d %q", tc.digest, tc.mode, rec.Code, x.FunctionError, tc.code, tc.err)
		}
		if tc.digest == "answer" && (rec.Body.String() != "teapot" || rec.Header().Get("X-A") != "b") {
			t.Errorf("answer: %q %v", rec.Body.String(), rec.Header())
		}
	}
}

// anyRoute is the exchange's route (the compiled chain carries its own).
var anyRoute = &ir.Route{Name: "r"}

// A revision is loaded once while configurations keep naming it, and closed only after the
// grace period and its last invocation once none does.
func TestEdgeFunctionKeptAcrossSwaps(t *testing.T) {
	functionCloseGrace = 50 * time.Millisecond
	defer func() { functionCloseGrace = 10 * time.Second }()
	release := make(chan struct{})
	g := &goFunction{fn: func(context.Context, *function.Request, *function.Host) (*function.Result, error) {
		<-release
		return &function.Result{Status: 200}, nil
	}}
	fns := &functions{byDigest: map[string]*goFunction{"d": g}}
	env := &Env{Functions: fns, Kept: &Kept{}}
	compileSwap := func(rt *ir.Route) Chain {
		env.Kept.Begin()
		c, err := Compile(rt, env)
		if err != nil {
			t.Fatal(err)
		}
		env.Kept.End(true)
		return c
	}
	c1 := compileSwap(fnRoute("d", "backend"))
	compileSwap(fnRoute("d", "backend"))
	if n := fns.loads.Load(); n != 1 {
		t.Fatalf("loaded %d times across two configurations naming it, want once", n)
	}
	// An invocation in flight on the old configuration when the revision leaves.
	done := make(chan int)
	go func() {
		x, rec := exchange(httptest.NewRequest("GET", "http://h/", nil), anyRoute)
		c1.Run(x)
		done <- rec.Code
	}()
	time.Sleep(20 * time.Millisecond)
	compileSwap(prefixRoute("/"))
	time.Sleep(150 * time.Millisecond) // past the grace
	if g.closed.Load() {
		t.Fatal("closed while an invocation was in flight")
	}
	close(release)
	if code := <-done; code != 200 {
		t.Fatalf("the invocation in flight got %d", code)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !g.closed.Load() {
		if time.Now().After(deadline) {
			t.Fatal("not closed after its last invocation")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
