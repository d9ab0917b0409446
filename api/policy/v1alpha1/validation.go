package v1alpha1

import (
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	gatewayv1 "apoxy.dev/apoxy/api/gateway/v1"
)

// Limits of a TrafficPolicy, checked at admission.
const (
	MaxTargetRefs      = 16
	MaxRateLimitRules  = 64
	MaxExempt          = 16
	MaxCountByParts    = 4
	MaxMatchValues     = 16 // headers, queryParams and jwtClaims of one match
	MaxClientCIDRs     = 32
	MaxTrackedKeysCap  = 10000000
	MaxRetryAttempts   = 10
	MaxRingSize        = 8388608
	MaxMaglevTableSize = 5000011
	MaxRequests        = 4294967295 // limit.requests is a uint32 on the data plane
)

// The targetable kinds: a Gateway (sectionName: listener), an HTTPRoute or GRPCRoute
// (sectionName: rule name).
var targetKinds = []string{"Gateway", "HTTPRoute", "GRPCRoute"}

var (
	strategies      = []string{string(StrategyDefault), string(StrategyOverride)}
	failureModes    = []string{string(FailOpen), string(FailClosed)}
	headerStyles    = []string{string(HeadersXRateLimit), string(HeadersIETFDraft), string(HeadersNone)}
	scopes          = []string{string(ScopeLocal), string(ScopeGlobal)}
	missingKeys     = []string{string(MissingKeyShared), string(MissingKeySkip)}
	counterSharings = []string{string(CountersPerRoute), string(CountersShared)}
	units           = []string{string(UnitSecond), string(UnitMinute), string(UnitHour), string(UnitDay)}
	httpMethods     = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
	pathTypes       = []string{string(PathMatchExact), string(PathMatchPathPrefix), string(PathMatchRegularExpression)}
	valueTypes      = []string{string(ValueMatchExact), string(ValueMatchRegularExpression), string(ValueMatchPresent)}
	retryConditions = []string{string(RetryOnConnectFailure), string(RetryOnRefusedStream), string(RetryOnReset),
		string(RetryOnTimeout), string(RetryOnGatewayError), string(RetryOnServerError)}
	retryGRPCCodes = []string{"Cancelled", "DeadlineExceeded", "Internal", "ResourceExhausted", "Unavailable"}
	lbTypes        = []string{string(LoadBalancerRoundRobin), string(LoadBalancerLeastRequest), string(LoadBalancerRandom),
		string(LoadBalancerRingHash), string(LoadBalancerMaglev)}
	sameSites = []string{string(SameSiteStrict), string(SameSiteLax), string(SameSiteNone)}
)

// grpcStatusNames are the gRPC status codes 1..16 by name (0, OK, is not an error).
var grpcStatusNames = []string{"", "Cancelled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
	"AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
	"Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"}

// GRPCStatusCode returns the code (1..16) a faultInjection.abort.grpcStatus names, by number or
// by name (Unavailable).
func GRPCStatusCode(v intstr.IntOrString) (int, bool) {
	if v.Type == intstr.Int {
		return int(v.IntVal), v.IntVal >= 1 && v.IntVal <= 16
	}
	i := slices.Index(grpcStatusNames, v.StrVal)
	return i, i >= 1
}

// ValidateTrafficPolicy checks a TrafficPolicy's spec (defaults applied) and returns every
// problem, each naming its field and how to fix it. Checks that need other objects (a target
// or rule exists, the Proxy has a rate-limit store, grpcStatus against HTTPRoute targets) are
// reported in status by the translator instead.
func ValidateTrafficPolicy(tp *TrafficPolicy) field.ErrorList {
	v := &validator{}
	s := &tp.Spec
	spec := field.NewPath("spec")
	v.policy(spec, s.TargetRefs, s.Strategy, s)
	if b := s.RateLimit; b != nil && v.enabled(spec.Child("rateLimit"), b.Disabled, b) {
		v.rateLimit(spec.Child("rateLimit"), b)
	}
	if b := s.Retry; b != nil && v.enabled(spec.Child("retry"), b.Disabled, b) {
		v.retry(spec.Child("retry"), b)
	}
	if b := s.Timeouts; b != nil && v.enabled(spec.Child("timeouts"), b.Disabled, b) {
		v.timeouts(spec.Child("timeouts"), b)
	}
	if b := s.CircuitBreaker; b != nil && v.enabled(spec.Child("circuitBreaker"), b.Disabled, b) {
		p := spec.Child("circuitBreaker")
		v.atLeast(p.Child("maxConnections"), b.MaxConnections, 1, "unset means unlimited")
		v.atLeast(p.Child("maxPendingRequests"), b.MaxPendingRequests, 1, "unset means unlimited")
		v.atLeast(p.Child("maxParallelRequests"), b.MaxParallelRequests, 1, "unset means unlimited")
		v.atLeast(p.Child("maxParallelRetries"), b.MaxParallelRetries, 1, "unset means unlimited")
		v.atLeast(p.Child("maxRequestsPerConnection"), b.MaxRequestsPerConnection, 0, "0 or unset means unlimited")
	}
	if b := s.OutlierDetection; b != nil && v.enabled(spec.Child("outlierDetection"), b.Disabled, b) {
		v.outlier(spec.Child("outlierDetection"), b)
	}
	if b := s.LoadBalancer; b != nil && v.enabled(spec.Child("loadBalancer"), b.Disabled, b) {
		v.loadBalancer(spec.Child("loadBalancer"), b)
	}
	if b := s.FaultInjection; b != nil && v.enabled(spec.Child("faultInjection"), b.Disabled, b) {
		v.faultInjection(spec.Child("faultInjection"), b)
	}
	return v.errs
}

// validator collects errors; its helpers each check one kind of rule. Both policy kinds use
// it, so a rule they share (targets, disabled blocks, durations, header names, CIDRs, paths,
// claim paths) is checked, and worded, the same way.
type validator struct{ errs field.ErrorList }

func (v *validator) add(errs ...*field.Error) { v.errs = append(v.errs, errs...) }

// policy checks what every policy kind's spec shares: targetRefs, strategy (Override only when
// every target is a Gateway) and that at least one feature block is set. spec points to the
// kind's spec struct, whose pointer fields are its feature blocks.
func (v *validator) policy(p *field.Path, refs []gwapiv1.LocalPolicyTargetReferenceWithSectionName, strategy PolicyStrategy, spec any) {
	v.targetRefs(p.Child("targetRefs"), refs)
	v.enum(p.Child("strategy"), string(strategy), strategies)
	if strategy == StrategyOverride {
		for i, r := range refs {
			if r.Kind != "Gateway" {
				v.add(field.Invalid(p.Child("strategy"), strategy, fmt.Sprintf(
					"Override is allowed only when every targetRef is a Gateway (targetRefs[%d] is %s %s): use Default, or put the route targets in another policy", i, r.Kind, r.Name)))
				break
			}
		}
	}
	if names, set := blocksOf(spec); !set {
		v.add(field.Required(p, "policy sets no feature: set at least one of "+names))
	}
}

// blocksOf returns the JSON names of a policy spec's feature blocks (its pointer fields), in
// spec order for messages ("a, b or c"), and whether any of them is set.
func blocksOf(spec any) (names string, anySet bool) {
	rv := reflect.ValueOf(spec).Elem()
	var list []string
	for i := range rv.NumField() {
		if f := rv.Field(i); f.Kind() == reflect.Pointer {
			list = append(list, jsonName(rv.Type().Field(i)))
			anySet = anySet || !f.IsNil()
		}
	}
	if len(list) < 2 {
		return strings.Join(list, ""), anySet
	}
	return strings.Join(list[:len(list)-1], ", ") + " or " + list[len(list)-1], anySet
}

// enabled reports whether a block is to be validated further: a disabled block must set nothing
// else, and every other field it sets is an error.
func (v *validator) enabled(p *field.Path, disabled bool, block any) bool {
	if !disabled {
		return true
	}
	rv := reflect.ValueOf(block).Elem()
	for i := range rv.NumField() {
		name := jsonName(rv.Type().Field(i))
		if name != "disabled" && !rv.Field(i).IsZero() {
			v.add(field.Forbidden(p.Child(name), "the block is disabled (disabled: true turns an inherited block off): remove "+name+", or remove disabled"))
		}
	}
	return false
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

func (v *validator) enum(p *field.Path, val string, allowed []string) {
	if val != "" && !slices.Contains(allowed, val) {
		v.add(field.NotSupported(p, val, allowed))
	}
}

func (v *validator) required(p *field.Path, val string, allowed []string) {
	if val == "" {
		v.add(field.Required(p, "set one of "+strings.Join(allowed, ", ")))
		return
	}
	v.enum(p, val, allowed)
}

func (v *validator) between(p *field.Path, val *int32, lo, hi int32) {
	if val != nil && (*val < lo || *val > hi) {
		v.add(field.Invalid(p, *val, fmt.Sprintf("must be between %d and %d", lo, hi)))
	}
}

func (v *validator) atLeast(p *field.Path, val *int32, lo int32, hint string) {
	if val != nil && *val < lo {
		v.add(field.Invalid(p, *val, fmt.Sprintf("must be at least %d (%s)", lo, hint)))
	}
}

// duration checks a Gateway API duration and returns its value when it is set and valid.
func (v *validator) duration(p *field.Path, d *gwapiv1.Duration) (time.Duration, bool) {
	if d == nil {
		return 0, false
	}
	return v.durationValue(p, *d)
}

func (v *validator) durationValue(p *field.Path, d gwapiv1.Duration) (time.Duration, bool) {
	val, ok := ParseDuration(d)
	if !ok {
		v.add(field.Invalid(p, d, "must be a duration such as 500ms, 10s, 5m or 1h30m (units h, m, s, ms; whole numbers)"))
	}
	return val, ok
}

// positive checks a duration that, when set, must be longer than zero.
func (v *validator) positive(p *field.Path, d *gwapiv1.Duration) (time.Duration, bool) {
	val, ok := v.duration(p, d)
	if ok && val <= 0 {
		v.add(field.Invalid(p, *d, "must be longer than 0s"))
		return val, false
	}
	return val, ok
}

func (v *validator) targetRefs(p *field.Path, refs []gwapiv1.LocalPolicyTargetReferenceWithSectionName) {
	if len(refs) == 0 {
		v.add(field.Required(p, "list 1 to 16 targets, e.g. {kind: HTTPRoute, name: NAME}"))
	}
	if len(refs) > MaxTargetRefs {
		v.add(field.TooMany(p, len(refs), MaxTargetRefs))
	}
	seen := map[string]bool{}
	for i, r := range refs {
		ip := p.Index(i)
		if g := string(r.Group); g != "" && g != gatewayv1.GroupName && g != gatewayv1.UpstreamGroupName {
			v.add(field.NotSupported(ip.Child("group"), r.Group, []string{gatewayv1.GroupName, gatewayv1.UpstreamGroupName}))
		}
		if !slices.Contains(targetKinds, string(r.Kind)) {
			v.add(field.NotSupported(ip.Child("kind"), r.Kind, targetKinds))
		}
		if r.Name == "" {
			v.add(field.Required(ip.Child("name"), "name the "+string(r.Kind)+" in the policy's namespace"))
		}
		for _, msg := range nameErrors(string(r.Name)) {
			v.add(field.Invalid(ip.Child("name"), r.Name, msg))
		}
		section := ""
		if r.SectionName != nil {
			section = string(*r.SectionName)
			if section == "" {
				v.add(field.Invalid(ip.Child("sectionName"), section, "name a listener (Gateway) or rule (route), or remove sectionName"))
			}
			for _, msg := range nameErrors(section) {
				v.add(field.Invalid(ip.Child("sectionName"), section, msg))
			}
		}
		key := string(r.Kind) + "/" + string(r.Name) + "/" + section
		if seen[key] {
			v.add(field.Duplicate(ip, strings.TrimSuffix(key, "/")))
		}
		seen[key] = true
	}
}

func nameErrors(name string) []string {
	if name == "" {
		return nil
	}
	return validation.IsDNS1123Subdomain(name)
}

// match checks a request match. nonEmpty refuses a match that sets nothing (which would
// select every request).
func (v *validator) match(p *field.Path, m *RequestMatch, nonEmpty bool) {
	if m == nil {
		return
	}
	if nonEmpty && reflect.ValueOf(*m).IsZero() {
		v.add(field.Required(p, "an empty match selects every request: set methods, path, headers, queryParams, clientCIDRs or jwtClaims"))
	}
	v.methods(p.Child("methods"), m.Methods)
	if m.Path != nil {
		v.path(p.Child("path"), m.Path, pathTypes)
	}
	v.valueMatches(p.Child("headers"), m.Headers, true)
	v.valueMatches(p.Child("queryParams"), m.QueryParams, false)
	v.cidrs(p.Child("clientCIDRs"), m.ClientCIDRs)
	v.claimMatches(p.Child("jwtClaims"), m.JWTClaims)
}

// methods checks a list of HTTP methods: each one of the nine standard ones, none twice.
func (v *validator) methods(p *field.Path, ms []gwapiv1.HTTPMethod) {
	seen := map[gwapiv1.HTTPMethod]bool{}
	for i, mt := range ms {
		v.enum(p.Index(i), string(mt), httpMethods)
		if mt == "" {
			v.add(field.Required(p.Index(i), "set an HTTP method such as GET"))
		}
		if seen[mt] {
			v.add(field.Duplicate(p.Index(i), mt))
		}
		seen[mt] = true
	}
}

// path checks a path match whose type is one of types: a "/"-rooted path, or a regular
// expression (RE2) that compiles.
func (v *validator) path(p *field.Path, pm *PathMatch, types []string) {
	if pm.Type != "" && !slices.Contains(types, string(pm.Type)) {
		v.add(field.NotSupported(p.Child("type"), pm.Type, types))
		return
	}
	switch {
	case pm.Value == "":
		v.add(field.Required(p.Child("value"), "set a path such as /login"))
	case pm.Type == PathMatchRegularExpression:
		v.regex(p.Child("value"), pm.Value)
	case !strings.HasPrefix(pm.Value, "/"):
		v.add(field.Invalid(p.Child("value"), pm.Value, "must start with '/'"))
	}
}

// cidrs checks a list of client CIDRs: at most 32, each parsing.
func (v *validator) cidrs(p *field.Path, cidrs []string) {
	v.tooMany(p, len(cidrs), MaxClientCIDRs)
	for i, c := range cidrs {
		v.cidr(p.Index(i), c)
	}
}

// claimMatches checks JWT claim matches: at most 16, each a valid claim path with values.
func (v *validator) claimMatches(p *field.Path, cs []ClaimMatch) {
	v.tooMany(p, len(cs), MaxMatchValues)
	for i, c := range cs {
		cp := p.Index(i)
		v.claimPath(cp.Child("name"), c.Name)
		if len(c.Values) == 0 {
			v.add(field.Required(cp.Child("values"), "list the claim values that match"))
		}
	}
}

// claimPath checks a claim path (see ParseClaimPath), the syntax every field naming a claim
// uses.
func (v *validator) claimPath(p *field.Path, path string) {
	if path == "" {
		v.add(field.Required(p, `name the claim: a dot path for nested claims (org.plan), "\." for a dot inside a name`))
		return
	}
	if _, err := ParseClaimPath(path); err != nil {
		v.add(field.Invalid(p, path, err.Error()))
	}
}

// listSize refuses an empty list (hint says what to list) or one longer than max.
func (v *validator) listSize(p *field.Path, n, max int, hint string) {
	if n == 0 {
		v.add(field.Required(p, hint))
	}
	v.tooMany(p, n, max)
}

// tooMany refuses a list longer than max.
func (v *validator) tooMany(p *field.Path, n, max int) {
	if n > max {
		v.add(field.TooMany(p, n, max))
	}
}

// uniqueName checks the name of a list item that must be a DNS label unique within its list
// (rate-limit rules, JWT providers, authorization rules); hint says how to fix a missing one.
func (v *validator) uniqueName(p *field.Path, name string, seen map[string]bool, hint string) {
	if name == "" {
		v.add(field.Required(p, hint))
		return
	}
	for _, msg := range validation.IsDNS1123Label(name) {
		v.add(field.Invalid(p, name, msg))
	}
	if seen[name] {
		v.add(field.Duplicate(p, name))
	}
	seen[name] = true
}

// headerName checks an HTTP header name (an RFC 9110 token) and reports whether it is one.
func (v *validator) headerName(p *field.Path, name string) bool {
	if name == "" {
		v.add(field.Required(p, "name the header, e.g. x-user-id"))
		return false
	}
	if !validHeaderName(name) {
		v.add(field.Invalid(p, name, "must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~), such as x-user-id"))
		return false
	}
	return true
}

// hopByHop are the headers that describe one connection, not the request (RFC 9110 §7.6.1,
// plus the legacy Keep-Alive and Proxy-Connection); the gateway manages them itself.
var hopByHop = []string{"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}

// ownedHeader checks a request header whose value the gateway sets from identity or lets an
// authorization service set: a valid name, and not Host, a pseudo-header or a hop-by-hop
// header, which the gateway owns.
func (v *validator) ownedHeader(p *field.Path, name string) {
	switch {
	case strings.HasPrefix(name, ":"):
		v.add(field.Invalid(p, name, "pseudo-headers (:authority, :path, ...) cannot be set: use a regular header such as x-user-id"))
	case !v.headerName(p, name):
	case strings.EqualFold(name, "host"):
		v.add(field.Invalid(p, name, "Host cannot be set (it selects the route and backend): use a regular header such as x-forwarded-user"))
	case slices.Contains(hopByHop, strings.ToLower(name)):
		v.add(field.Invalid(p, name, name+" is a hop-by-hop header, which the gateway manages: use a regular header"))
	}
}

// ownedHeaders checks a list of ownedHeader names: at most max, none twice (names compare
// case-insensitively).
func (v *validator) ownedHeaders(p *field.Path, names []string, max int) {
	v.tooMany(p, len(names), max)
	seen := map[string]bool{}
	for i, h := range names {
		v.ownedHeader(p.Index(i), h)
		if key := strings.ToLower(h); seen[key] {
			v.add(field.Duplicate(p.Index(i), h))
		} else {
			seen[key] = true
		}
	}
}

func (v *validator) valueMatches(p *field.Path, ms []ValueMatch, header bool) {
	if len(ms) > MaxMatchValues {
		v.add(field.TooMany(p, len(ms), MaxMatchValues))
	}
	for i, m := range ms {
		ip := p.Index(i)
		switch {
		case m.Name == "":
			v.add(field.Required(ip.Child("name"), "name the header or query parameter"))
		case header && !validHeaderName(m.Name):
			v.add(field.Invalid(ip.Child("name"), m.Name, "must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)"))
		}
		v.enum(ip.Child("type"), string(m.Type), valueTypes)
		switch {
		case m.Type == ValueMatchPresent && m.Value != "":
			v.add(field.Forbidden(ip.Child("value"), "type Present matches any value: remove value, or use type Exact"))
		case m.Type != ValueMatchPresent && m.Value == "":
			v.add(field.Required(ip.Child("value"), "set the value to match, or use type: Present to match any value"))
		case m.Type == ValueMatchRegularExpression:
			v.regex(ip.Child("value"), m.Value)
		}
	}
}

func (v *validator) regex(p *field.Path, expr string) {
	if _, err := regexp.Compile(expr); err != nil {
		v.add(field.Invalid(p, expr, "must be an RE2 regular expression: "+err.Error()))
	}
}

func (v *validator) cidr(p *field.Path, s string) {
	if _, err := netip.ParsePrefix(s); err != nil {
		v.add(field.Invalid(p, s, "must be a CIDR such as 10.0.0.0/8 or 2001:db8::/32 (a single address: 192.0.2.1/32)"))
	}
}

func validHeaderName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func (v *validator) rateLimit(p *field.Path, b *RateLimit) {
	v.enum(p.Child("failureMode"), string(b.FailureMode), failureModes)
	v.enum(p.Child("responseHeaders"), string(b.ResponseHeaders), headerStyles)
	if b.Response != nil {
		v.between(p.Child("response", "statusCode"), b.Response.StatusCode, 400, 599)
	}
	if len(b.Exempt) > MaxExempt {
		v.add(field.TooMany(p.Child("exempt"), len(b.Exempt), MaxExempt))
	}
	for i := range b.Exempt {
		v.match(p.Child("exempt").Index(i), &b.Exempt[i], true)
	}
	rp := p.Child("rules")
	v.listSize(rp, len(b.Rules), MaxRateLimitRules, "list 1 to 64 rules (to drop inherited limits, set disabled: true instead)")
	names := map[string]bool{}
	for i := range b.Rules {
		r, ip := &b.Rules[i], rp.Index(i)
		v.uniqueName(ip.Child("name"), r.Name, names, "name the rule (a DNS label such as per-ip); rules merge by name across policies")
		v.rule(ip, r)
	}
}

func (v *validator) rule(p *field.Path, r *RateLimitRule) {
	v.enum(p.Child("scope"), string(r.Scope), scopes)
	v.match(p.Child("match"), r.Match, false)
	if len(r.CountBy) > MaxCountByParts {
		v.add(field.TooMany(p.Child("countBy"), len(r.CountBy), MaxCountByParts))
	}
	parts := map[string]bool{}
	for i := range r.CountBy {
		if key, ok := v.keyPart(p.Child("countBy").Index(i), &r.CountBy[i]); ok {
			if parts[key] {
				v.add(field.Duplicate(p.Child("countBy").Index(i), key))
			}
			parts[key] = true
		}
	}
	v.enum(p.Child("missingKey"), string(r.MissingKey), missingKeys)
	if r.MissingKey != "" && len(r.CountBy) == 0 {
		v.add(field.Forbidden(p.Child("missingKey"), "missingKey applies only to countBy parts: add countBy, or remove missingKey"))
	}
	if l := r.Limit; l == nil {
		v.add(field.Required(p.Child("limit"), "set {requests: N, unit: Second|Minute|Hour|Day}"))
	} else {
		lp := p.Child("limit")
		switch {
		case l.Requests == nil:
			v.add(field.Required(lp.Child("requests"), "set the requests allowed per unit (0 rejects every matching request)"))
		case *l.Requests < 0 || *l.Requests > MaxRequests:
			v.add(field.Invalid(lp.Child("requests"), *l.Requests, fmt.Sprintf("must be between 0 and %d", int64(MaxRequests))))
		}
		v.required(lp.Child("unit"), string(l.Unit), units)
	}
	v.enum(p.Child("counters"), string(r.Counters), counterSharings)
	if r.MaxTrackedKeys != nil {
		if r.Scope == ScopeGlobal {
			v.add(field.Forbidden(p.Child("maxTrackedKeys"), "only Local rules track keys in memory: remove maxTrackedKeys, or use scope: Local"))
		} else {
			v.between(p.Child("maxTrackedKeys"), r.MaxTrackedKeys, 1, MaxTrackedKeysCap)
		}
	}
}

// keyPart checks one countBy entry and returns its identity (for the uniqueness check).
func (v *validator) keyPart(p *field.Path, k *KeyPart) (string, bool) {
	var set []string
	key := ""
	if k.ClientIP != nil {
		set, key = append(set, "clientIP"), "clientIP"
		v.between(p.Child("clientIP", "ipv4PrefixLength"), k.ClientIP.IPv4PrefixLength, 1, 32)
		v.between(p.Child("clientIP", "ipv6PrefixLength"), k.ClientIP.IPv6PrefixLength, 1, 128)
	}
	if k.Header != nil {
		set, key = append(set, "header"), "header "+strings.ToLower(k.Header.Name)
		v.headerName(p.Child("header", "name"), k.Header.Name)
	}
	if k.QueryParam != nil {
		set, key = append(set, "queryParam"), "queryParam "+k.QueryParam.Name
		if k.QueryParam.Name == "" {
			v.add(field.Required(p.Child("queryParam", "name"), "name the query parameter"))
		}
	}
	if k.JWTClaim != nil {
		set, key = append(set, "jwtClaim"), "jwtClaim "+k.JWTClaim.Name
		v.claimPath(p.Child("jwtClaim", "name"), k.JWTClaim.Name)
	}
	if k.Method != nil {
		set, key = append(set, "method"), "method"
	}
	if k.Path != nil {
		set, key = append(set, "path"), "path"
	}
	switch len(set) {
	case 1:
		return key, true
	case 0:
		v.add(field.Required(p, "set exactly one of clientIP, header, queryParam, jwtClaim, method or path"))
	default:
		v.add(field.Invalid(p, strings.Join(set, ", "), "set exactly one of clientIP, header, queryParam, jwtClaim, method or path; use one countBy entry per part"))
	}
	return "", false
}

func (v *validator) retry(p *field.Path, b *Retry) {
	v.between(p.Child("attempts"), b.Attempts, 0, MaxRetryAttempts)
	if on := b.RetryOn; on != nil {
		op := p.Child("retryOn")
		uniqueEnum(v, op.Child("conditions"), on.Conditions, retryConditions)
		seen := map[int32]bool{}
		for i, c := range on.StatusCodes {
			ip := op.Child("statusCodes").Index(i)
			if c < 400 || c > 599 {
				v.add(field.Invalid(ip, c, "must be an HTTP error status between 400 and 599"))
			}
			if seen[c] {
				v.add(field.Duplicate(ip, c))
			}
			seen[c] = true
		}
		uniqueEnum(v, op.Child("grpcCodes"), on.GRPCCodes, retryGRPCCodes)
	}
	uniqueEnum(v, p.Child("methods"), b.Methods, httpMethods)
	if bo := b.Backoff; bo != nil {
		bp := p.Child("backoff")
		base, baseOK := v.positive(bp.Child("baseInterval"), bo.BaseInterval)
		maxI, maxOK := v.positive(bp.Child("maxInterval"), bo.MaxInterval)
		if baseOK && maxOK && maxI < base {
			v.add(field.Invalid(bp.Child("maxInterval"), *bo.MaxInterval, "must not be shorter than baseInterval ("+string(*bo.BaseInterval)+")"))
		}
	}
	if g := b.Budget; g != nil {
		gp := p.Child("budget")
		v.between(gp.Child("percent"), g.Percent, 0, 100)
		if d, ok := v.duration(gp.Child("interval"), g.Interval); ok && (d < time.Second || d > time.Hour) {
			v.add(field.Invalid(gp.Child("interval"), *g.Interval, "must be between 1s and 1h"))
		}
		if r := g.MinRetryRate; r != nil {
			v.atLeast(gp.Child("minRetryRate", "count"), r.Count, 0, "retries always allowed per interval")
			v.positive(gp.Child("minRetryRate", "interval"), r.Interval)
		}
	}
}

// uniqueEnum checks a list of enum values: each supported, none twice.
func uniqueEnum[T ~string](v *validator, p *field.Path, vals []T, allowed []string) {
	seen := map[T]bool{}
	for i, val := range vals {
		if !slices.Contains(allowed, string(val)) {
			v.add(field.NotSupported(p.Index(i), val, allowed))
		}
		if seen[val] {
			v.add(field.Duplicate(p.Index(i), val))
		}
		seen[val] = true
	}
}

func (v *validator) timeouts(p *field.Path, b *Timeouts) {
	req, reqOK := v.duration(p.Child("request"), b.Request)
	be, beOK := v.duration(p.Child("backendRequest"), b.BackendRequest)
	if reqOK && beOK && req > 0 && be > req {
		v.add(field.Invalid(p.Child("backendRequest"), *b.BackendRequest,
			"must not be longer than request ("+string(*b.Request)+"), which bounds every attempt together"))
	}
	v.positive(p.Child("connect"), b.Connect)
	v.duration(p.Child("idle"), b.Idle)
	v.duration(p.Child("maxStreamDuration"), b.MaxStreamDuration)
	v.positive(p.Child("connectionIdle"), b.ConnectionIdle)
}

func (v *validator) outlier(p *field.Path, b *OutlierDetection) {
	v.atLeast(p.Child("consecutive5xx"), b.Consecutive5xx, 0, "0 turns this detector off")
	v.atLeast(p.Child("consecutiveGatewayErrors"), b.ConsecutiveGatewayErrors, 0, "0 turns this detector off")
	v.positive(p.Child("interval"), b.Interval)
	base, baseOK := v.positive(p.Child("baseEjectionTime"), b.BaseEjectionTime)
	maxE, maxOK := v.positive(p.Child("maxEjectionTime"), b.MaxEjectionTime)
	if baseOK && maxOK && maxE < base {
		v.add(field.Invalid(p.Child("maxEjectionTime"), *b.MaxEjectionTime, "must not be shorter than baseEjectionTime ("+string(*b.BaseEjectionTime)+")"))
	}
	v.between(p.Child("maxEjectionPercent"), b.MaxEjectionPercent, 1, 100)
}

func (v *validator) loadBalancer(p *field.Path, b *LoadBalancer) {
	v.enum(p.Child("type"), string(b.Type), lbTypes)
	typ := b.Type
	if typ == "" {
		typ = LoadBalancerLeastRequest
	}
	only := func(name string, set bool, want ...LoadBalancerType) {
		if set && !slices.Contains(want, typ) {
			var ws []string
			for _, w := range want {
				ws = append(ws, string(w))
			}
			v.add(field.Forbidden(p.Child(name), fmt.Sprintf("%s applies only to type %s (type is %s): remove %s, or change type",
				name, strings.Join(ws, " or "), typ, name)))
		}
	}
	only("leastRequest", b.LeastRequest != nil, LoadBalancerLeastRequest)
	if b.LeastRequest != nil {
		v.between(p.Child("leastRequest", "choiceCount"), b.LeastRequest.ChoiceCount, 2, 10)
	}
	hashed := typ == LoadBalancerRingHash || typ == LoadBalancerMaglev
	switch {
	case hashed && b.Hash == nil:
		v.add(field.Required(p.Child("hash"), fmt.Sprintf("type %s needs a hash input: set one of cookie, header, sourceIP or queryParam", typ)))
	case b.Hash != nil:
		only("hash", true, LoadBalancerRingHash, LoadBalancerMaglev)
		v.hash(p.Child("hash"), b.Hash)
	}
	only("ringHash", b.RingHash != nil, LoadBalancerRingHash)
	if rh := b.RingHash; rh != nil {
		rp := p.Child("ringHash")
		v.between(rp.Child("minRingSize"), rh.MinRingSize, 1, MaxRingSize)
		v.between(rp.Child("maxRingSize"), rh.MaxRingSize, 1, MaxRingSize)
		if rh.MinRingSize != nil && rh.MaxRingSize != nil && *rh.MinRingSize > *rh.MaxRingSize {
			v.add(field.Invalid(rp.Child("minRingSize"), *rh.MinRingSize, fmt.Sprintf("must not exceed maxRingSize (%d)", *rh.MaxRingSize)))
		}
	}
	only("maglev", b.Maglev != nil, LoadBalancerMaglev)
	if m := b.Maglev; m != nil && m.TableSize != nil {
		if n := *m.TableSize; n < 2 || n > MaxMaglevTableSize || !prime(n) {
			v.add(field.Invalid(p.Child("maglev", "tableSize"), n, fmt.Sprintf("must be a prime number no larger than %d, e.g. 65537", MaxMaglevTableSize)))
		}
	}
	only("slowStart", b.SlowStart != nil, LoadBalancerRoundRobin, LoadBalancerLeastRequest)
	if ss := b.SlowStart; ss != nil && ss.Window == "" {
		v.add(field.Required(p.Child("slowStart", "window"), "set the ramp-up time, e.g. 30s"))
	} else if ss != nil {
		if d, ok := v.durationValue(p.Child("slowStart", "window"), ss.Window); ok && d <= 0 {
			v.add(field.Invalid(p.Child("slowStart", "window"), ss.Window, "must be longer than 0s"))
		}
	}
}

func (v *validator) hash(p *field.Path, h *HashPolicy) {
	n := 0
	if c := h.Cookie; c != nil {
		n++
		cp := p.Child("cookie")
		if !validHeaderName(c.Name) {
			v.add(field.Invalid(cp.Child("name"), c.Name, "must be a cookie name (letters, digits and !#$%&'*+-.^_`|~)"))
		}
		v.positive(cp.Child("ttl"), c.TTL)
		if c.Path != "" && !strings.HasPrefix(c.Path, "/") {
			v.add(field.Invalid(cp.Child("path"), c.Path, "must start with '/'"))
		}
		v.enum(cp.Child("sameSite"), string(c.SameSite), sameSites)
		if c.SameSite == SameSiteNone && !c.Secure {
			v.add(field.Invalid(cp.Child("sameSite"), c.SameSite, "browsers refuse SameSite=None without Secure: set secure: true, or use Lax"))
		}
	}
	if h.Header != nil {
		n++
		v.headerName(p.Child("header", "name"), h.Header.Name)
	}
	if h.SourceIP != nil {
		n++
	}
	if h.QueryParam != nil {
		n++
		if h.QueryParam.Name == "" {
			v.add(field.Required(p.Child("queryParam", "name"), "name the query parameter"))
		}
	}
	if n != 1 {
		v.add(field.Invalid(p, n, "set exactly one of cookie, header, sourceIP or queryParam"))
	}
}

func prime(n32 int32) bool {
	n := int64(n32)
	if n < 2 {
		return false
	}
	for d := int64(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

func (v *validator) faultInjection(p *field.Path, b *FaultInjection) {
	v.match(p.Child("match"), b.Match, false)
	if b.Delay == nil && b.Abort == nil {
		v.add(field.Required(p, "set delay, abort or both (or remove faultInjection)"))
	}
	if d := b.Delay; d != nil {
		dp := p.Child("delay")
		if d.FixedDelay == "" {
			v.add(field.Required(dp.Child("fixedDelay"), "set the delay, e.g. 2s"))
		} else if val, ok := v.durationValue(dp.Child("fixedDelay"), d.FixedDelay); ok && val <= 0 {
			v.add(field.Invalid(dp.Child("fixedDelay"), d.FixedDelay, "must be longer than 0s"))
		}
		v.percentage(dp, d.Percent, d.Fraction)
	}
	if a := b.Abort; a != nil {
		ap := p.Child("abort")
		switch {
		case a.HTTPStatus == nil && a.GRPCStatus == nil:
			v.add(field.Required(ap, "set httpStatus (HTTPRoute, Gateway) or grpcStatus (GRPCRoute)"))
		case a.HTTPStatus != nil && a.GRPCStatus != nil:
			v.add(field.Forbidden(ap.Child("grpcStatus"), "set httpStatus or grpcStatus, not both"))
		}
		v.between(ap.Child("httpStatus"), a.HTTPStatus, 400, 599)
		if g := a.GRPCStatus; g != nil {
			if _, ok := GRPCStatusCode(*g); !ok {
				v.add(field.Invalid(ap.Child("grpcStatus"), g.String(), "must be a gRPC status code 1..16 or its name (Cancelled, Unknown, ..., Unavailable, DataLoss, Unauthenticated)"))
			}
		}
		v.percentage(ap, a.Percent, a.Fraction)
	}
}

// percentage checks a percent (0..100) or a fraction, never both.
func (v *validator) percentage(p *field.Path, percent *int32, fraction *gwapiv1.Fraction) {
	if percent != nil && fraction != nil {
		v.add(field.Forbidden(p.Child("fraction"), "set percent or fraction, not both"))
	}
	v.between(p.Child("percent"), percent, 0, 100)
	if f := fraction; f != nil {
		fp := p.Child("fraction")
		den := int32(DefaultFractionDenominator)
		if f.Denominator != nil {
			den = *f.Denominator
			if den < 1 {
				v.add(field.Invalid(fp.Child("denominator"), den, "must be at least 1"))
			}
		}
		switch {
		case f.Numerator < 0:
			v.add(field.Invalid(fp.Child("numerator"), f.Numerator, "must be at least 0"))
		case den >= 1 && f.Numerator > den:
			v.add(field.Invalid(fp.Child("numerator"), f.Numerator, fmt.Sprintf("must not exceed the denominator (%d)", den)))
		}
	}
}
