package explain

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// printPolicy prints a served route's effective TrafficPolicy and AuthPolicy, one line per
// block, field or rate-limit rule, each with the object it came from (ir.Route.PolicySources,
// recorded by the translator). Routes no policy applies to print nothing.
func printPolicy(out io.Writer, snap *ir.Snapshot, r *ir.Route) error {
	if len(r.PolicySources) == 0 {
		return nil
	}
	fmt.Fprintln(out, "  Effective TrafficPolicy and AuthPolicy (blocks no policy sets keep the platform defaults):")
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	backend := policyBackend(snap, r)
	for _, s := range r.PolicySources {
		name, value := s.Block, policyValue(r, backend, s)
		if rule, ok := strings.CutPrefix(s.Block, "rateLimit.rules["); ok {
			name = "rateLimit rule " + strings.TrimSuffix(rule, "]")
		}
		from := s.Source
		if !strings.HasPrefix(from, "TrafficPolicy ") && !strings.HasPrefix(from, "AuthPolicy ") {
			from += " (route's own field)"
		}
		fmt.Fprintf(w, "    %s\t%s\tfrom %s\n", name, value, from)
	}
	return w.Flush()
}

// policyBackend is the backend cluster the route sends to, which carries the cluster blocks
// (loadBalancer, circuitBreaker, outlierDetection); nil for redirects and direct responses.
func policyBackend(snap *ir.Snapshot, r *ir.Route) *ir.Backend {
	for _, wb := range r.Backends {
		if wb.Invalid {
			continue
		}
		for _, b := range snap.Backends {
			if b.Name == wb.Backend {
				return b
			}
		}
	}
	return nil
}

// policyValue describes what the route does for one recorded block.
func policyValue(r *ir.Route, b *ir.Backend, s ir.PolicySource) string {
	if s.Disabled {
		return "disabled (platform default)"
	}
	if rule, ok := strings.CutPrefix(s.Block, "rateLimit.rules["); ok {
		return rateLimitRuleValue(r, strings.TrimSuffix(rule, "]"))
	}
	switch s.Block {
	case "rateLimit":
		if rl := r.RateLimit; rl != nil {
			v := fmt.Sprintf("answers %d, %s headers, fail %s", rl.StatusCode, rl.Headers, ternary(rl.FailClosed, "closed", "open"))
			if len(rl.Exempt) > 0 {
				v += fmt.Sprintf(", %d exempt matches", len(rl.Exempt))
			}
			return v
		}
	case "faultInjection":
		if f := r.Fault; f != nil {
			var parts []string
			if f.Delay > 0 {
				parts = append(parts, fmt.Sprintf("delay %s for %g%%", time.Duration(f.Delay), f.DelayPercent))
			}
			switch {
			case f.AbortStatus != 0:
				parts = append(parts, fmt.Sprintf("abort %d for %g%%", f.AbortStatus, f.AbortPercent))
			case f.AbortGRPC != 0:
				parts = append(parts, fmt.Sprintf("abort grpc-status %d for %g%%", f.AbortGRPC, f.AbortPercent))
			}
			if f.Match != nil {
				parts = append(parts, "matching requests only")
			}
			return strings.Join(parts, ", ")
		}
	case "timeouts":
		return timeoutsBlockValue(r, b)
	case "timeouts.request":
		return timeoutValue(r.Timeouts.Request)
	case "timeouts.backendRequest":
		return timeoutValue(r.Timeouts.BackendRequest)
	case "retry":
		return retryValue(r.Retry)
	case "retry.attempts":
		if r.Retry != nil {
			return strconv.Itoa(r.Retry.Attempts)
		}
	case "retry.retryOn.statusCodes":
		if r.Retry != nil {
			return joinInts(r.Retry.Codes)
		}
	case "retry.backoff.baseInterval":
		if r.Retry != nil {
			return time.Duration(r.Retry.Backoff).String()
		}
	case "loadBalancer":
		if b != nil && b.LoadBalancer != nil {
			return loadBalancerValue(b.LoadBalancer)
		}
	case "circuitBreaker":
		if b != nil && b.CircuitBreaker != nil {
			cb := b.CircuitBreaker
			return limits([]string{"maxConnections", "maxPendingRequests", "maxParallelRequests", "maxParallelRetries", "maxRequestsPerConnection"},
				[]int{cb.MaxConnections, cb.MaxPendingRequests, cb.MaxParallelRequests, cb.MaxParallelRetries, cb.MaxRequestsPerConnection})
		}
	case "outlierDetection":
		if b != nil && b.Outlier != nil {
			od := b.Outlier
			return fmt.Sprintf("eject after %d consecutive 5xx / %d gateway errors, every %s, for %s..%s, at most %d%%", od.Consecutive5xx,
				od.ConsecutiveGatewayErrors, time.Duration(od.Interval), time.Duration(od.BaseEjectionTime), time.Duration(od.MaxEjectionTime), od.MaxEjectionPercent)
		}
	}
	if v, ok := authValue(r, s.Block); ok {
		return v
	}
	if b == nil && (s.Block == "loadBalancer" || s.Block == "circuitBreaker" || s.Block == "outlierDetection") {
		return "(no backend: the route answers itself)"
	}
	return "set"
}

var windowUnits = map[time.Duration]string{time.Second: "Second", time.Minute: "Minute", time.Hour: "Hour", 24 * time.Hour: "Day"}

func rateLimitRuleValue(r *ir.Route, name string) string {
	if r.RateLimit == nil {
		return "?"
	}
	for _, rule := range r.RateLimit.Rules {
		if rule.Name != name {
			continue
		}
		unit, ok := windowUnits[time.Duration(rule.Window)]
		if !ok {
			unit = time.Duration(rule.Window).String()
		}
		v := fmt.Sprintf("%d/%s", rule.Requests, unit)
		if len(rule.CountBy) > 0 {
			var keys []string
			for _, k := range rule.CountBy {
				keys = append(keys, strings.TrimSpace(string(k.Kind)+" "+k.Name))
			}
			v += " per " + strings.Join(keys, "+")
		}
		if rule.Match != nil {
			v += ", matching requests only"
		}
		if rule.Global {
			v += ", Global"
		}
		if rule.Shadow {
			v += ", shadow (not enforced)"
		}
		return v
	}
	return "?"
}

func timeoutValue(d ir.Duration) string {
	if d == 0 {
		return "none"
	}
	return time.Duration(d).String()
}

// timeoutsBlockValue describes the timeouts other than request and backendRequest (which
// have lines of their own): idle and maxStreamDuration on the route, connect and
// connectionIdle on its backend cluster (zero there: the data plane's 10 s and 60 s).
func timeoutsBlockValue(r *ir.Route, b *ir.Backend) string {
	parts := []string{"idle " + timeoutValue(r.Timeouts.StreamIdle)}
	if r.Timeouts.MaxStreamDuration > 0 {
		parts = append(parts, "maxStreamDuration "+time.Duration(r.Timeouts.MaxStreamDuration).String())
	}
	if b != nil {
		connect, idle := 10*time.Second, 60*time.Second
		if b.ConnectTimeout > 0 {
			connect = time.Duration(b.ConnectTimeout)
		}
		if b.ConnectionIdle > 0 {
			idle = time.Duration(b.ConnectionIdle)
		}
		parts = append(parts, "connect "+connect.String(), "connectionIdle "+idle.String())
	}
	return strings.Join(parts, ", ")
}

func retryValue(rt *ir.Retry) string {
	if rt == nil {
		return "platform default"
	}
	v := fmt.Sprintf("attempts %d", rt.Attempts)
	if len(rt.Conditions) > 0 {
		v += ", on " + strings.Join(rt.Conditions, ",")
	}
	if len(rt.Codes) > 0 {
		v += ", codes " + joinInts(rt.Codes)
	}
	if len(rt.GRPCCodes) > 0 {
		v += ", grpc-status " + joinInts(rt.GRPCCodes)
	}
	if rt.Backoff > 0 {
		v += ", backoff " + time.Duration(rt.Backoff).String()
		if rt.MaxBackoff > 0 {
			v += ".." + time.Duration(rt.MaxBackoff).String()
		}
	}
	if rt.Budget != nil {
		v += fmt.Sprintf(", budget %d%%", rt.Budget.Percent)
	}
	return v
}

func loadBalancerValue(lb *ir.LoadBalancer) string {
	v := lb.Type
	if h := lb.Hash; h != nil {
		switch {
		case h.Header != "":
			v += " on header " + h.Header
		case h.QueryParam != "":
			v += " on query parameter " + h.QueryParam
		case h.SourceIP:
			v += " on client IP"
		case h.Cookie != nil:
			v += " on cookie " + h.Cookie.Name
		}
	}
	if lb.SlowStart > 0 {
		v += ", slow start " + time.Duration(lb.SlowStart).String()
	}
	return v
}

// limits lists the non-zero limits; none set is "no limits".
func limits(names []string, values []int) string {
	var parts []string
	for i, n := range names {
		if values[i] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", n, values[i]))
		}
	}
	if len(parts) == 0 {
		return "no limits"
	}
	return strings.Join(parts, ", ")
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func ternary[T any](c bool, a, b T) T {
	if c {
		return a
	}
	return b
}

// authValue describes an AuthPolicy block a route serves.
func authValue(r *ir.Route, block string) (string, bool) {
	a := r.Auth
	switch {
	case block == "cors" && r.CORS != nil:
		return "origins " + strings.Join(r.CORS.AllowOrigins, ", "), true
	case block == "cors":
		return "the route's CORS filter", true
	case a == nil:
		return "", false
	case block == "basicAuth" && a.Basic != nil:
		return fmt.Sprintf("realm %q%s", a.Basic.Realm, unavailable(a.Basic.AuthBlock)), true
	case block == "jwt" && a.JWT != nil:
		var ps []string
		for _, p := range a.JWT.Providers {
			ps = append(ps, p.Name+" ("+p.Issuer+")")
		}
		opt := ""
		if a.JWT.Optional {
			opt = ", optional"
		}
		return "providers " + strings.Join(ps, ", ") + opt + unavailable(a.JWT.AuthBlock), true
	case block == "authorization" && a.Authorization != nil:
		def := "Deny"
		if a.Authorization.DefaultAllow {
			def = "Allow"
		}
		return fmt.Sprintf("%d rules, first match wins, defaultAction %s", len(a.Authorization.Rules), def), true
	case block == "oidc" && a.OIDC != nil:
		return "issuer " + a.OIDC.Issuer + ", client " + a.OIDC.ClientID + ", callback " + a.OIDC.RedirectURL + unavailable(a.OIDC.AuthBlock), true
	case block == "extAuth" && a.ExtAuth != nil:
		return "service " + a.ExtAuth.Backend + unavailable(a.ExtAuth.AuthBlock), true
	}
	return "", false
}

func unavailable(b ir.AuthBlock) string {
	if b.Unavailable != "" {
		return " (UNAVAILABLE, fails closed: " + b.Unavailable + ")"
	}
	return ""
}
