package filter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"apoxy.dev/apoxy/internal/ir"
)

// Rate-limit and fault-injection edge cases of the policy API design §5 that the filter chain
// decides alone (cases 21–23, 29, 59); docs/testing-trafficpolicy.md maps them.

// Case 21: exactly N requests pass in a Day window and N+1 is rejected with Retry-After and
// the X-RateLimit headers counting down to UTC midnight; the window resets at midnight (clock
// injected), not 24 hours after the first request.
func TestRateLimitDayWindowResetsAtUTCMidnight(t *testing.T) {
	env, clk := testEnv()
	clk.t = time.Date(2026, 12, 2, 23, 59, 0, 0, time.UTC)
	rule := perIP(3, false)
	rule.Window = ir.Duration(24 * time.Hour)
	rt := rlRoute(&ir.RateLimit{Headers: "XRateLimit", StatusCode: 429, Rules: []ir.RateLimitRule{rule}})
	c, err := Compile(rt, env)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, rec := send(t, c, rt, "192.0.2.1"); rec.Code != 200 || rec.Header().Get("X-RateLimit-Reset") != "60" {
			t.Fatalf("request %d: %d %v", i+1, rec.Code, rec.Header())
		}
	}
	_, rec := send(t, c, rt, "192.0.2.1")
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "60" || rec.Header().Get("X-RateLimit-Limit") != "3" ||
		rec.Header().Get("X-RateLimit-Remaining") != "0" || rec.Header().Get("X-RateLimit-Reset") != "60" {
		t.Fatalf("request 4: %d %v; want 429 with Retry-After 60 (seconds to midnight)", rec.Code, rec.Header())
	}
	clk.t = time.Date(2026, 12, 3, 0, 0, 1, 0, time.UTC) // one minute later, a new UTC day
	if _, rec := send(t, c, rt, "192.0.2.1"); rec.Code != 200 || rec.Header().Get("X-RateLimit-Remaining") != "2" {
		t.Errorf("after UTC midnight: %d %v, want a fresh window", rec.Code, rec.Header())
	}
}

func newMetricsEnv() (*Env, *clock) {
	env, clk := testEnv()
	env.Metrics = NewMetrics(prometheus.NewRegistry())
	return env, clk
}

// Case 22: a shadow rule over its limit never rejects and sends no rate-limit headers, and the
// metric and access-log field say shadow_over_limit; a shadow rule and an enforced rule
// matching the same request: the enforced one decides, and its headers are the ones sent.
func TestRateLimitShadowAndEnforcedTogether(t *testing.T) {
	env, _ := newMetricsEnv()
	shadow := perIP(1, true)
	shadow.Name, shadow.Counter = "shadow", "c/shadow"
	rt := rlRoute(&ir.RateLimit{Headers: "XRateLimit", Rules: []ir.RateLimitRule{shadow}})
	c, _ := Compile(rt, env)
	for i := range 5 {
		x, rec := send(t, c, rt, "192.0.2.1")
		if rec.Code != 200 || rec.Header().Get("X-RateLimit-Limit") != "" || rec.Header().Get("Retry-After") != "" {
			t.Fatalf("shadow-only request %d: %d %v", i+1, rec.Code, rec.Header())
		}
		if want := map[bool]string{true: "ok", false: "shadow_over_limit"}[i == 0]; x.RateLimit != want {
			t.Errorf("shadow-only request %d: decision %q, want %q", i+1, x.RateLimit, want)
		}
	}
	if n := testutil.ToFloat64(env.Metrics.RateLimit.WithLabelValues("default/p", "shadow", "shadow_over_limit")); n != 4 {
		t.Errorf("shadow_over_limit metric %v, want 4", n)
	}

	// Both kinds on one route: shadow 1/min, enforced 3/min.
	env, _ = newMetricsEnv()
	enforced := perIP(3, false)
	enforced.Name, enforced.Counter = "enforced", "c/enforced"
	rt = rlRoute(&ir.RateLimit{Headers: "XRateLimit", Rules: []ir.RateLimitRule{shadow, enforced}})
	c, _ = Compile(rt, env)
	for i, want := range []int{200, 200, 200, 429} {
		x, rec := send(t, c, rt, "192.0.2.1")
		if rec.Code != want {
			t.Fatalf("request %d: %d, want %d (the enforced rule decides)", i+1, rec.Code, want)
		}
		if want == 200 && (rec.Header().Get("X-RateLimit-Limit") != "3" || (i > 0 && x.RateLimit != "shadow_over_limit")) {
			t.Errorf("request %d: headers %v decision %q; want the enforced rule's headers, shadow logged", i+1, rec.Header(), x.RateLimit)
		}
		if want == 429 && x.RateLimit != "over_limit" {
			t.Errorf("request %d: decision %q, want over_limit", i+1, x.RateLimit)
		}
	}
}

// Case 23: two rules match and one is over: 429, and the other rule still counts the
// rejected request.
func TestRateLimitEveryMatchingRuleCounts(t *testing.T) {
	env, _ := testEnv()
	tight := perIP(1, false)
	tight.Name, tight.Counter = "tight", "c/tight"
	tight.Match = &ir.RequestMatch{Methods: []string{"GET"}}
	loose := perIP(3, false)
	loose.Name, loose.Counter = "loose", "c/loose"
	rt := rlRoute(&ir.RateLimit{Headers: "XRateLimit", Rules: []ir.RateLimitRule{tight, loose}})
	c, _ := Compile(rt, env)
	send(t, c, rt, "192.0.2.1")                                 // tight 1, loose 1
	if _, rec := send(t, c, rt, "192.0.2.1"); rec.Code != 429 { // tight over; loose 2
		t.Fatalf("second request: %d, want 429 from the tight rule", rec.Code)
	}
	post := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = "192.0.2.1:1234"
		x, rec := exchange(r, rt)
		if !c.Run(x) {
			x.W.WriteHeader(200)
		}
		return rec
	}
	// POSTs match only the loose rule. It counted the rejected GET, so the first POST is its
	// third request (0 left) and the second POST is rejected.
	if rec := post(); rec.Code != 200 || rec.Header().Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("POST (loose count 3): %d remaining %q, want 200 with 0 left", rec.Code, rec.Header().Get("X-RateLimit-Remaining"))
	}
	if rec := post(); rec.Code != 429 {
		t.Errorf("POST (loose count 4): %d, want 429", rec.Code)
	}
}

// Case 29 (data-plane part): with the Global store down, FailOpen lets the request through
// and FailClosed answers 503 (the store is unavailable, the client is not over a limit), not
// 429, even with a custom limit status. Both are logged as store_error. (A real Redis stopped
// mid-test: internal/proxy TestRateLimitRedisDown.)
func TestRateLimitStoreDownAnswers503(t *testing.T) {
	for _, tc := range []struct {
		closed bool
		grpc   bool
		code   int
		status string
	}{
		{false, false, 200, ""},
		{true, false, 503, ""},
	} {
		env, _ := testEnv()
		env.Global = failingStore{}
		rule := perIP(100, false)
		rule.Global = true
		rt := rlRoute(&ir.RateLimit{Headers: "XRateLimit", StatusCode: 420, FailClosed: tc.closed, Rules: []ir.RateLimitRule{rule}})
		c, _ := Compile(rt, env)
		var hdr []string
		if tc.grpc {
			hdr = []string{"Content-Type", "application/grpc"}
		}
		x, rec := send(t, c, rt, "192.0.2.1", hdr...)
		if rec.Code != tc.code || rec.Header().Get("Grpc-Status") != tc.status || x.RateLimit != "store_error" || x.Flags&FlagRateLimitStoreError == 0 {
			t.Errorf("failClosed=%v grpc=%v: %d grpc-status %q decision %q flags %s; want %d %q store_error",
				tc.closed, tc.grpc, rec.Code, rec.Header().Get("Grpc-Status"), x.RateLimit, x.Flags, tc.code, tc.status)
		}
	}
}

type slowStore struct{}

func (slowStore) Hit(ctx context.Context, _ []string, _ []time.Duration) ([]uint32, error) {
	<-ctx.Done()
	return nil, errors.New("i/o timeout")
}

// Case 29: a store that hangs is bounded (the request is not held past the store's timeout)
// and then follows the failure mode like a refused connection.
func TestRateLimitStoreHangsFailsClosedInTime(t *testing.T) {
	env, _ := testEnv()
	env.Global = slowStore{}
	rule := perIP(100, false)
	rule.Global = true
	rt := rlRoute(&ir.RateLimit{Headers: "XRateLimit", FailClosed: true, Rules: []ir.RateLimitRule{rule}})
	c, _ := Compile(rt, env)
	start := time.Now()
	_, rec := send(t, c, rt, "192.0.2.1")
	if took := time.Since(start); rec.Code != http.StatusServiceUnavailable || took > 3*time.Second {
		t.Errorf("hanging store: %d after %v, want 503 within about a second", rec.Code, took)
	}
}

// Case 59: percent 0 never aborts, 100 always does, and 10 % over 10,000 requests stays
// within 5 standard deviations (σ = 30) of 1,000; the delay is sampled on its own. The
// sampling uses the process's random source (not seedable), so the bound is statistical:
// a false failure has a probability of about 6e-7.
func TestFaultPercentages(t *testing.T) {
	const n = 10000
	aborted := func(f *ir.FaultInjection) (int, int) {
		rt := prefixRoute("/")
		rt.Fault = f
		c, err := Compile(rt, nil)
		if err != nil {
			t.Fatal(err)
		}
		aborts, delays := 0, 0
		for range n {
			x, rec := send(t, c, rt, "192.0.2.1")
			if rec.Code == 503 {
				aborts++
			}
			if x.Flags&FlagDelayInjected != 0 {
				delays++
			}
		}
		return aborts, delays
	}
	if a, _ := aborted(&ir.FaultInjection{AbortStatus: 503, AbortPercent: 0}); a != 0 {
		t.Errorf("percent 0: %d aborts", a)
	}
	if a, _ := aborted(&ir.FaultInjection{AbortStatus: 503, AbortPercent: 100}); a != n {
		t.Errorf("percent 100: %d of %d aborted", a, n)
	}
	a, d := aborted(&ir.FaultInjection{AbortStatus: 503, AbortPercent: 10, Delay: ir.Duration(time.Nanosecond), DelayPercent: 50})
	if a < 850 || a > 1150 {
		t.Errorf("percent 10: %d of %d aborted, want 1000 ± 150", a, n)
	}
	if d < 4750 || d > 5250 {
		t.Errorf("delay percent 50: %d of %d delayed, want 5000 ± 250", d, n)
	}
	// A fraction of 1/1000 (the design's 0.5 % example is 5/1000) is honoured below 1 %.
	if a, _ := aborted(&ir.FaultInjection{AbortStatus: 503, AbortPercent: 0.1}); a > 40 {
		t.Errorf("percent 0.1: %d of %d aborted, want about 10", a, n)
	}
}

// Case 26's metric: keys a Local rule stops tracking at maxTrackedKeys are counted, so an
// operator sees a bound too small for the traffic.
func TestRateLimitEvictionsAreCounted(t *testing.T) {
	env, _ := testEnv()
	env.Metrics = NewMetrics(nil)
	rule := perIP(1000, false)
	rule.Counter, rule.MaxTrackedKeys = "default/p/evict", 10
	rt := rlRoute(&ir.RateLimit{Headers: "None", Rules: []ir.RateLimitRule{rule}})
	c, _ := Compile(rt, env)
	for i := range 25 {
		send(t, c, rt, fmt.Sprintf("192.0.2.%d", i+1))
	}
	if n := testutil.ToFloat64(env.Metrics.Evicted.WithLabelValues("default/p", "per-ip")); n != 15 {
		t.Errorf("evicted keys %v, want 15 (25 clients, 10 tracked)", n)
	}
	send(t, c, rt, "192.0.2.25") // tracked: no eviction
	if n := testutil.ToFloat64(env.Metrics.Evicted.WithLabelValues("default/p", "per-ip")); n != 15 {
		t.Errorf("a tracked key evicted another: %v", n)
	}
}
