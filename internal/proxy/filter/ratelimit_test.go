package filter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/ratelimit"
)

func rlRoute(rl *ir.RateLimit) *ir.Route {
	rt := prefixRoute("/")
	rt.RateLimit = rl
	return rt
}

func perIP(requests uint32, shadow bool) ir.RateLimitRule {
	return ir.RateLimitRule{Name: "per-ip", Policy: "default/p", Counter: "default/p/per-ip/route", Requests: requests, Window: ir.Duration(time.Minute),
		CountBy: []ir.KeyPart{{Kind: ir.KeyClientIP, IPv4PrefixLength: 32, IPv6PrefixLength: 64}}, Shadow: shadow, MaxTrackedKeys: 1000}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func testEnv() (*Env, *clock) {
	c := &clock{time.Date(2026, 12, 2, 10, 0, 30, 0, time.UTC)}
	return &Env{RateLimits: ratelimit.NewLocal(), Now: c.now}, c
}

// send runs the chain for a request from ip and plays the upstream when nothing answered.
func send(t *testing.T, c Chain, rt *ir.Route, ip string, hdr ...string) (*Exchange, *httptest.ResponseRecorder) {
	t.Helper()
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = ip + ":1234"
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	x, rec := exchange(r, rt)
	if !c.Run(x) {
		x.W.WriteHeader(200)
	}
	return x, rec
}

func TestRateLimitPerClientIP(t *testing.T) {
	env, clk := testEnv()
	rt := rlRoute(&ir.RateLimit{Headers: "XRateLimit", StatusCode: 429, Rules: []ir.RateLimitRule{perIP(3, false)}})
	c, err := Compile(rt, env)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"2", "1", "0"} {
		x, rec := send(t, c, rt, "192.0.2.1")
		if rec.Code != 200 || rec.Header().Get("X-RateLimit-Remaining") != want || rec.Header().Get("X-RateLimit-Limit") != "3" ||
			rec.Header().Get("X-RateLimit-Reset") != "30" || x.RateLimit != "ok" {
			t.Fatalf("request %d: %d %v %q", i+1, rec.Code, rec.Header(), x.RateLimit)
		}
	}
	x, rec := send(t, c, rt, "192.0.2.1")
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "30" || rec.Header().Get("X-RateLimit-Remaining") != "0" ||
		x.Flags != FlagRateLimited || x.RateLimit != "over_limit" {
		t.Fatalf("4th request: %d %v flags %s %q", rec.Code, rec.Header(), x.Flags, x.RateLimit)
	}
	// Another client has its own bucket.
	if _, rec := send(t, c, rt, "192.0.2.2"); rec.Code != 200 {
		t.Errorf("another client: %d", rec.Code)
	}
	// A configuration swap (a new chain, same counter) keeps the count.
	c2, _ := Compile(rt, env)
	if _, rec := send(t, c2, rt, "192.0.2.1"); rec.Code != 429 {
		t.Errorf("after a recompile the count was reset: %d", rec.Code)
	}
	// The next window starts afresh.
	clk.t = clk.t.Add(30 * time.Second)
	if _, rec := send(t, c2, rt, "192.0.2.1"); rec.Code != 200 {
		t.Errorf("next window: %d", rec.Code)
	}
}

// IPv6 clients are counted by their /64 (they rotate addresses inside it).
func TestRateLimitIPv6Prefix(t *testing.T) {
	env, _ := testEnv()
	rt := rlRoute(&ir.RateLimit{Headers: "None", Rules: []ir.RateLimitRule{perIP(1, false)}})
	c, _ := Compile(rt, env)
	send(t, c, rt, "[2001:db8:1:2::1]")
	if _, rec := send(t, c, rt, "[2001:db8:1:2::ffff]"); rec.Code != 429 || rec.Header().Get("X-RateLimit-Limit") != "" || rec.Header().Get("Retry-After") == "" {
		t.Errorf("same /64: %d %v", rec.Code, rec.Header())
	}
	if _, rec := send(t, c, rt, "[2001:db8:1:3::1]"); rec.Code != 200 {
		t.Errorf("another /64: %d", rec.Code)
	}
}

func TestRateLimitShadowNeverRejects(t *testing.T) {
	env, _ := testEnv()
	rt := rlRoute(&ir.RateLimit{Headers: "XRateLimit", Rules: []ir.RateLimitRule{perIP(1, true)}})
	c, _ := Compile(rt, env)
	send(t, c, rt, "192.0.2.1")
	x, rec := send(t, c, rt, "192.0.2.1")
	if rec.Code != 200 || x.RateLimit != "shadow_over_limit" || x.Flags != 0 || rec.Header().Get("X-RateLimit-Limit") != "" {
		t.Errorf("shadow: %d %q %v", rec.Code, x.RateLimit, rec.Header())
	}
}

func TestRateLimitExemptAndMatch(t *testing.T) {
	env, _ := testEnv()
	rule := perIP(0, false) // 0 rejects every matching request
	rule.Match = &ir.RequestMatch{Methods: []string{"GET"}, Headers: []ir.ValueMatch{{Name: "x-tier", Type: ir.ValueExact, Value: "free"}}}
	rt := rlRoute(&ir.RateLimit{Headers: "XRateLimit", Exempt: []ir.RequestMatch{{ClientCIDRs: []string{"10.0.0.0/8"}}}, Rules: []ir.RateLimitRule{rule}})
	c, _ := Compile(rt, env)
	if _, rec := send(t, c, rt, "192.0.2.1", "X-Tier", "free"); rec.Code != 429 {
		t.Errorf("matching request: %d", rec.Code)
	}
	if _, rec := send(t, c, rt, "192.0.2.1", "X-Tier", "paid"); rec.Code != 200 {
		t.Errorf("non-matching request: %d", rec.Code)
	}
	if x, rec := send(t, c, rt, "10.1.2.3", "X-Tier", "free"); rec.Code != 200 || x.RateLimit != "" {
		t.Errorf("exempt client: %d %q", rec.Code, x.RateLimit)
	}
}

// A request lacking a key part shares one bucket by default, or is not counted with Skip.
func TestRateLimitMissingKey(t *testing.T) {
	for _, skip := range []bool{false, true} {
		env, _ := testEnv()
		rule := ir.RateLimitRule{Name: "per-key", Counter: "k", Requests: 1, Window: ir.Duration(time.Minute),
			CountBy: []ir.KeyPart{{Kind: ir.KeyHeader, Name: "x-api-key"}}, SkipMissing: skip}
		rt := rlRoute(&ir.RateLimit{Headers: "XRateLimit", Rules: []ir.RateLimitRule{rule}})
		c, _ := Compile(rt, env)
		send(t, c, rt, "192.0.2.1")
		_, rec := send(t, c, rt, "192.0.2.2")
		if want := map[bool]int{false: 429, true: 200}[skip]; rec.Code != want {
			t.Errorf("skip=%v: second keyless request %d, want %d", skip, rec.Code, want)
		}
		if _, rec := send(t, c, rt, "192.0.2.1", "X-Api-Key", "a"); rec.Code != 200 {
			t.Errorf("skip=%v: a keyed request %d", skip, rec.Code)
		}
	}
}

func TestRateLimitIETFHeadersAndGRPC(t *testing.T) {
	env, _ := testEnv()
	rt := rlRoute(&ir.RateLimit{Headers: "IETFDraft", Rules: []ir.RateLimitRule{perIP(1, false)}})
	c, _ := Compile(rt, env)
	if _, rec := send(t, c, rt, "192.0.2.1"); rec.Header().Get("RateLimit-Policy") != `"per-ip";q=1;w=60` || rec.Header().Get("RateLimit") != `"per-ip";r=0;t=30` {
		t.Errorf("IETF headers %v", rec.Header())
	}
	if _, rec := send(t, c, rt, "192.0.2.1", "Content-Type", "application/grpc"); rec.Code != 200 || rec.Header().Get("Grpc-Status") != "8" {
		t.Errorf("gRPC: %d %v", rec.Code, rec.Header())
	}
}

type failingStore struct{}

func (failingStore) Hit(context.Context, []string, []time.Duration) ([]uint32, error) {
	return nil, errors.New("connection refused")
}

// A Global rule whose store is down follows the failure mode.
func TestRateLimitStoreDown(t *testing.T) {
	for _, closed := range []bool{false, true} {
		env, _ := testEnv()
		env.Global = failingStore{}
		rule := perIP(100, false)
		rule.Global = true
		rt := rlRoute(&ir.RateLimit{Headers: "XRateLimit", FailClosed: closed, Rules: []ir.RateLimitRule{rule}})
		c, _ := Compile(rt, env)
		x, rec := send(t, c, rt, "192.0.2.1")
		// Fail closed answers 503: the store is at fault, not the client (never 429, not RL).
		want := map[bool]int{false: 200, true: 503}[closed]
		if rec.Code != want || x.Flags != FlagRateLimitStoreError || x.RateLimit != "store_error" {
			t.Errorf("failClosed=%v: %d flags %s %q", closed, rec.Code, x.Flags, x.RateLimit)
		}
	}
}

func BenchmarkRateLimitNeverTrips(b *testing.B) {
	env, _ := testEnv()
	rt := rlRoute(&ir.RateLimit{Headers: "XRateLimit", Rules: []ir.RateLimitRule{perIP(1<<30, false)}})
	c, _ := Compile(rt, env)
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	w := &nopWriter{h: http.Header{}}
	x := &Exchange{Route: rt}
	b.ReportAllocs()
	for b.Loop() {
		x.Begin(r, w)
		x.RateLimit = ""
		x.rl = rateLimitState{}
		c.Run(x)
		x.ResponseHead(w.h, 200)
	}
}

type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

type countingStore struct{ keys int }

func (s *countingStore) Hit(_ context.Context, keys []string, _ []time.Duration) ([]uint32, error) {
	s.keys += len(keys)
	return make([]uint32, len(keys)), nil
}

// Every Global rule is counted, however many a policy has (up to the API's 64).
func TestRateLimitCountsEveryGlobalRule(t *testing.T) {
	env, _ := testEnv()
	store := &countingStore{}
	env.Global = store
	var rules []ir.RateLimitRule
	for i := range 12 {
		r := perIP(100, false)
		r.Name, r.Counter, r.Global = fmt.Sprint("g", i), fmt.Sprint("c", i), true
		rules = append(rules, r)
	}
	rt := rlRoute(&ir.RateLimit{Headers: "XRateLimit", Rules: rules})
	c, _ := Compile(rt, env)
	send(t, c, rt, "192.0.2.1")
	if store.keys != 12 {
		t.Errorf("the store counted %d of 12 Global rules", store.keys)
	}
}
