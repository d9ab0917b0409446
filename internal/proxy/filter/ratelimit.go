package filter

import (
	"context"
	"errors"
	"math/bits"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"

	authjwt "apoxy.dev/apoxy/internal/auth/jwt"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/ratelimit"
	"apoxy.dev/apoxy/internal/telemetry/span"
)

// rateLimit enforces a route's effective rate-limit rules (TrafficPolicy rateLimit). Two
// stages share the work: rules that need no identity run before authentication (so a per-IP
// rule protects the authentication CPU paths); rules that match or count by JWT claims run
// after it. Every matching rule counts the request, even one that is rejected; the request
// is rejected when any enforced rule is over its limit. Shadow rules count, log and emit
// metrics but never reject and never add headers.
type rateLimit struct {
	cfg    *ir.RateLimit
	env    *Env
	exempt []*matcher
	rules  []rlRule
	grpc   bool
	// store counts the Global rules: the route's Proxy's, else the process's (nil: none).
	store ratelimit.Store
}

type rlRule struct {
	r      *ir.RateLimitRule
	match  *matcher
	set    *ratelimit.Set // Local rules
	window time.Duration
	seed   uint64
	// keys are the canonical header names of Header key parts, by part.
	keys []string
	// claims are the claim paths of JWT-claim key parts, by part.
	claims             [][]string
	ok, over, shadowed prometheus.Counter
	storeErr           prometheus.Counter
	evicted            prometheus.Counter // keys evicted at maxTrackedKeys
}

// rateLimitState is what the rate limiter tells the response: the enforced matching rule
// with the fewest requests left.
type rateLimitState struct {
	set       bool
	hooked    bool
	limit     uint32
	remaining uint32
	reset     time.Duration
	window    time.Duration
	name      string
}

func newRateLimitPreAuth(r *ir.Route, env *Env) (Stage, error)  { return newRateLimit(r, env, false) }
func newRateLimitPostAuth(r *ir.Route, env *Env) (Stage, error) { return newRateLimit(r, env, true) }

func newRateLimit(r *ir.Route, env *Env, afterAuth bool) (Stage, error) {
	rl := r.RateLimit
	if rl == nil {
		return nil, nil
	}
	s := &rateLimit{cfg: rl, env: env, grpc: r.GRPC}
	if env != nil {
		s.store = env.Global
		if rl.Store != "" {
			s.store = nil
			if env.Stores != nil {
				s.store = env.Stores(rl.Store)
			}
		}
	}
	var err error
	if s.exempt, err = compileMatches(rl.Exempt); err != nil {
		return nil, err
	}
	for i := range rl.Rules {
		rr := &rl.Rules[i]
		if rr.AfterAuth != afterAuth {
			continue
		}
		c := rlRule{r: rr, window: time.Duration(rr.Window), seed: xxhash.Sum64String(rr.Counter)}
		if c.window < time.Second {
			c.window = time.Second
		}
		if c.match, err = compileMatch(rr.Match); err != nil {
			return nil, err
		}
		for _, p := range rr.CountBy {
			c.keys = append(c.keys, http.CanonicalHeaderKey(p.Name))
			var path []string
			if p.Kind == ir.KeyJWTClaim {
				path = authjwt.SplitClaimPath(p.Name)
			}
			c.claims = append(c.claims, path)
		}
		if !rr.Global && env != nil && env.RateLimits != nil {
			c.set = env.RateLimits.Set(rr.Counter, rr.MaxTrackedKeys)
		}
		if env != nil && env.Metrics != nil {
			v := env.Metrics.RateLimit
			c.ok = v.WithLabelValues(rr.Policy, rr.Name, "ok")
			c.over = v.WithLabelValues(rr.Policy, rr.Name, "over_limit")
			c.shadowed = v.WithLabelValues(rr.Policy, rr.Name, "shadow_over_limit")
			c.storeErr = v.WithLabelValues(rr.Policy, rr.Name, "store_error")
			if env.Metrics.Evicted != nil {
				c.evicted = env.Metrics.Evicted.WithLabelValues(rr.Policy, rr.Name)
			}
		}
		s.rules = append(s.rules, c)
	}
	if len(s.rules) == 0 {
		return nil, nil
	}
	return s, nil
}

// missingPart stands in for a key part the request lacks (such requests share one bucket).
const missingPart = 0x6d697373696e67 // "missing"

func mix(h, part uint64) uint64 { return bits.RotateLeft64(h^part, 27) * 0x9e3779b97f4a7c15 }

// key hashes the rule's key parts for this request; ok is false when a part is missing and
// the rule skips such requests.
func (c *rlRule) key(x *Exchange) (uint64, bool) {
	h := c.seed
	for i, p := range c.r.CountBy {
		var part uint64
		found := true
		switch p.Kind {
		case ir.KeyClientIP:
			a := x.ClientAddr()
			n := p.IPv6PrefixLength
			if a.Is4() {
				n = p.IPv4PrefixLength
			}
			if n > 0 {
				if pfx, err := a.Prefix(n); err == nil {
					a = pfx.Addr()
				}
			}
			b := a.As16()
			part = xxhash.Sum64(b[:])
		case ir.KeyHeader:
			vs := x.Req.Header[c.keys[i]]
			found = len(vs) > 0
			if found {
				part = xxhash.Sum64String(vs[0])
			}
		case ir.KeyQueryParam:
			var v string
			v, found = queryValue(x.Req.URL.RawQuery, p.Name)
			part = xxhash.Sum64String(v)
		case ir.KeyMethod:
			part = xxhash.Sum64String(x.Req.Method)
		case ir.KeyPath:
			part = xxhash.Sum64String(x.Req.URL.Path)
		case ir.KeyJWTClaim:
			// Only a verified token's claims: a request without one lacks the part.
			var v any
			if v, found = authjwt.LookupClaim(x.Identity.Claims, c.claims[i]); found {
				var text string
				if text, found = authjwt.HeaderValue(v); found {
					part = xxhash.Sum64String(text)
				}
			}
		}
		if !found {
			if c.r.SkipMissing {
				return 0, false
			}
			part = missingPart
		}
		h = mix(h, part)
	}
	return h, true
}

// queryValue finds a query parameter's first value without building the whole map.
func queryValue(raw, name string) (string, bool) {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if strings.ContainsAny(k, "%+") {
			k, _ = url.QueryUnescape(k)
		}
		if k != name {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			v, _ = url.QueryUnescape(v)
		}
		return v, true
	}
	return "", false
}

// Contained: Serve works on the request's goroutine and keeps nothing of it.
func (*rateLimit) Contained() {}

func (s *rateLimit) Serve(x *Exchange) bool {
	for _, m := range s.exempt {
		if m.matches(x) {
			return false
		}
	}
	now := s.env.now()
	over, shadowOver, storeFailed := false, false, false
	var overState rateLimitState
	// Global rules are counted together in one round trip after the Local ones (the arrays
	// hold the usual few without allocating; more spill over).
	var globalsBuf [8]int
	var globalKeysBuf [8]uint64
	globals, globalKeys := globalsBuf[:0], globalKeysBuf[:0]
	for i := range s.rules {
		c := &s.rules[i]
		if !c.match.matches(x) {
			continue
		}
		key, ok := c.key(x)
		if !ok {
			continue
		}
		if c.r.Global {
			globals, globalKeys = append(globals, i), append(globalKeys, key)
			continue
		}
		start, reset := ratelimit.Window(now, c.window)
		n, evicted := c.set.HitEvict(key, start)
		if evicted && c.evicted != nil {
			c.evicted.Inc()
		}
		s.decide(x, c, n, reset, &over, &shadowOver, &overState)
	}
	if ng := len(globals); ng > 0 {
		keys := make([]string, ng)
		ttls := make([]time.Duration, ng)
		resets := make([]time.Duration, ng)
		for j := range ng {
			c := &s.rules[globals[j]]
			start, reset := ratelimit.Window(now, c.window)
			keys[j] = c.r.Counter + "/" + strconv.FormatUint(globalKeys[j], 36) + "/" + strconv.FormatInt(start, 10)
			ttls[j], resets[j] = c.window, reset
		}
		var counts []uint32
		err := errNoStore
		if s.store != nil {
			ctx, cancel := context.WithTimeout(x.Req.Context(), time.Second)
			ctx, end := span.Start(ctx, "ratelimit.store", attribute.Int("apoxy.ratelimit.keys", len(keys)))
			counts, err = s.store.Hit(ctx, keys, ttls)
			end(err)
			cancel()
		}
		if err != nil {
			storeFailed = true
			x.Flags |= FlagRateLimitStoreError
			for j := range ng {
				if c := &s.rules[globals[j]]; c.storeErr != nil {
					c.storeErr.Inc()
				}
			}
		} else {
			for j := range ng {
				s.decide(x, &s.rules[globals[j]], counts[j], resets[j], &over, &shadowOver, &overState)
			}
		}
	}
	switch {
	case over || (storeFailed && s.cfg.FailClosed):
		x.RateLimit = "over_limit"
		if !over {
			// Fail closed: the store, not the client, is at fault: 503, never 429.
			x.RateLimit = "store_error"
			x.W.Header().Set("Retry-After", "1")
			x.Error("the rate-limit store is unavailable (failureMode: FailClosed)", http.StatusServiceUnavailable)
			return true
		}
		x.Flags |= FlagRateLimited
		s.reject(x, &overState)
		return true
	case shadowOver:
		x.RateLimit = "shadow_over_limit"
	case storeFailed:
		x.RateLimit = "store_error"
	case x.RateLimit == "":
		x.RateLimit = "ok"
	}
	if x.rl.set && s.cfg.Headers != "None" && !x.rl.hooked {
		x.rl.hooked = true
		x.OnResponse(s)
	}
	return false
}

var errNoStore = errors.New("no global rate-limit store is configured")

// decide records one rule's count: over its limit (enforced or shadow), and the enforced
// rule with the fewest requests left for the response headers.
func (s *rateLimit) decide(x *Exchange, c *rlRule, n uint32, reset time.Duration, over, shadowOver *bool, overState *rateLimitState) {
	limit := c.r.Requests
	if n > limit {
		if c.r.Shadow {
			*shadowOver = true
			if c.shadowed != nil {
				c.shadowed.Inc()
			}
			return
		}
		if c.over != nil {
			c.over.Inc()
		}
		if !*over || reset > overState.reset {
			*overState = rateLimitState{set: true, limit: limit, reset: reset, window: c.window, name: c.r.Name}
		}
		*over = true
		return
	}
	if c.ok != nil {
		c.ok.Inc()
	}
	if c.r.Shadow {
		return
	}
	left := limit - n
	if st := &x.rl; !st.set || left < st.remaining {
		st.set, st.limit, st.remaining, st.reset, st.window, st.name = true, limit, left, reset, c.window, c.r.Name
	}
}

// reject answers a limited request: the configured status (gRPC: RESOURCE_EXHAUSTED) with
// Retry-After and, unless turned off, the rate-limit headers.
func (s *rateLimit) reject(x *Exchange, st *rateLimitState) {
	h := x.W.Header()
	secs := int((st.reset + time.Second - 1) / time.Second)
	h.Set("Retry-After", strconv.Itoa(max(secs, 1)))
	if st.limit > 0 || st.name != "" {
		s.headers(h, st)
	}
	if s.grpc || IsGRPC(x.Req) {
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", "8") // RESOURCE_EXHAUSTED
		h.Set("Grpc-Message", "rate%20limit%20exceeded")
		x.W.WriteHeader(http.StatusOK)
		return
	}
	code := s.cfg.StatusCode
	if code == 0 {
		code = http.StatusTooManyRequests
	}
	x.Error("rate limit exceeded", code)
}

// Response adds the rate-limit headers of the enforced rule with the fewest requests left.
func (s *rateLimit) Response(x *Exchange, h http.Header, _ int) { s.headers(h, &x.rl) }

func (s *rateLimit) headers(h http.Header, st *rateLimitState) {
	reset := strconv.Itoa(max(int((st.reset+time.Second-1)/time.Second), 1))
	switch s.cfg.Headers {
	case "None":
	case "IETFDraft": // draft-ietf-httpapi-ratelimit-headers-09
		name := strconv.Quote(st.name)
		h.Set("RateLimit-Policy", name+";q="+strconv.FormatUint(uint64(st.limit), 10)+";w="+strconv.Itoa(int(st.window/time.Second)))
		h.Set("RateLimit", name+";r="+strconv.FormatUint(uint64(st.remaining), 10)+";t="+reset)
	default:
		h.Set("X-RateLimit-Limit", strconv.FormatUint(uint64(st.limit), 10))
		h.Set("X-RateLimit-Remaining", strconv.FormatUint(uint64(st.remaining), 10))
		h.Set("X-RateLimit-Reset", reset)
	}
}

// IsGRPC reports whether a request is gRPC (any application/grpc content type).
func IsGRPC(r *http.Request) bool {
	ct := r.Header["Content-Type"]
	return len(ct) > 0 && strings.HasPrefix(ct[0], "application/grpc")
}
