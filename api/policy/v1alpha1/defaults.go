package v1alpha1

import (
	"time"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	gatewayv1 "apoxy.dev/apoxy/api/gateway/v1"
)

// Defaults users can rely on. They are filled only inside blocks the policy sets (an absent
// block stays absent, so it is inherited from a less specific policy) and never inside a
// disabled block (which may hold nothing else).
const (
	DefaultRateLimitStatusCode = 429
	DefaultMaxTrackedKeys      = 100000
	DefaultIPv4PrefixLength    = 32
	DefaultIPv6PrefixLength    = 64

	DefaultRetryAttempts       = 2
	DefaultRetryBaseInterval   = 25 * time.Millisecond
	DefaultRetryBudgetPercent  = 20
	DefaultRetryBudgetInterval = 10 * time.Second
	DefaultMinRetryCount       = 10
	DefaultMinRetryInterval    = time.Second

	DefaultConnectTimeout        = 10 * time.Second
	DefaultIdleTimeout           = 5 * time.Minute
	DefaultConnectionIdleTimeout = 60 * time.Second

	DefaultConsecutive5xx     = 5
	DefaultOutlierInterval    = 10 * time.Second
	DefaultBaseEjectionTime   = 30 * time.Second
	DefaultMaxEjectionTime    = 300 * time.Second
	DefaultMaxEjectionPercent = 50

	DefaultChoiceCount     = 2
	DefaultMinRingSize     = 1024
	DefaultMaxRingSize     = 8388608
	DefaultMaglevTableSize = 65537

	DefaultFaultPercent        = 100
	DefaultFractionDenominator = 100
)

// DefaultRetryMethods are the methods retried on every trigger by default: the idempotent ones
// (RFC 9110 §9.2.2).
var DefaultRetryMethods = []gwapiv1.HTTPMethod{"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}

// SetDefaultsTrafficPolicy fills the defaults of the blocks a policy sets and normalises its
// targetRefs' group (empty or gateway.networking.k8s.io become gateway.apoxy.dev). It is
// idempotent.
//
// timeouts.request and timeouts.backendRequest are left unset on purpose: the platform's
// request timeout depends on the route kind (100s for HTTPRoutes, none for GRPCRoutes) and a
// route's own timeouts win field by field, so the translator applies them, not the stored policy.
func SetDefaultsTrafficPolicy(tp *TrafficPolicy) {
	s := &tp.Spec
	defaultPolicy(s.TargetRefs, &s.Strategy)
	if b := s.RateLimit; b != nil && !b.Disabled {
		defaultRateLimit(b)
	}
	if b := s.Retry; b != nil && !b.Disabled {
		defaultRetry(b)
	}
	if b := s.Timeouts; b != nil && !b.Disabled {
		setDuration(&b.Connect, DefaultConnectTimeout)
		setDuration(&b.Idle, DefaultIdleTimeout)
		setDuration(&b.ConnectionIdle, DefaultConnectionIdleTimeout)
	}
	if b := s.OutlierDetection; b != nil && !b.Disabled {
		setInt32(&b.Consecutive5xx, DefaultConsecutive5xx)
		setInt32(&b.ConsecutiveGatewayErrors, 0)
		setDuration(&b.Interval, DefaultOutlierInterval)
		setDuration(&b.BaseEjectionTime, DefaultBaseEjectionTime)
		// A base above the default cap would make the default invalid; the cap follows it.
		if base, ok := ParseDuration(*b.BaseEjectionTime); ok && base > DefaultMaxEjectionTime && b.MaxEjectionTime == nil {
			v := *b.BaseEjectionTime
			b.MaxEjectionTime = &v
		}
		setDuration(&b.MaxEjectionTime, DefaultMaxEjectionTime)
		setInt32(&b.MaxEjectionPercent, DefaultMaxEjectionPercent)
	}
	if b := s.LoadBalancer; b != nil && !b.Disabled {
		defaultLoadBalancer(b)
	}
	if b := s.FaultInjection; b != nil && !b.Disabled {
		defaultMatch(b.Match)
		if d := b.Delay; d != nil {
			defaultPercentage(&d.Percent, d.Fraction)
		}
		if a := b.Abort; a != nil {
			defaultPercentage(&a.Percent, a.Fraction)
		}
	}
}

// defaultPolicy fills what every policy kind shares: the targetRefs' group (empty or
// gateway.networking.k8s.io become gateway.apoxy.dev, so one target has one spelling) and
// strategy Default.
func defaultPolicy(refs []gwapiv1.LocalPolicyTargetReferenceWithSectionName, strategy *PolicyStrategy) {
	for i := range refs {
		if g := &refs[i].Group; *g == "" || *g == gatewayv1.UpstreamGroupName {
			*g = gatewayv1.GroupName
		}
	}
	if *strategy == "" {
		*strategy = StrategyDefault
	}
}

func defaultRateLimit(b *RateLimit) {
	setBool(&b.Inherit, true)
	if b.FailureMode == "" {
		b.FailureMode = FailOpen
	}
	if b.ResponseHeaders == "" {
		b.ResponseHeaders = HeadersXRateLimit
	}
	if b.Response == nil {
		b.Response = &RateLimitResponse{}
	}
	setInt32(&b.Response.StatusCode, DefaultRateLimitStatusCode)
	for i := range b.Exempt {
		defaultMatch(&b.Exempt[i])
	}
	for i := range b.Rules {
		r := &b.Rules[i]
		if r.Scope == "" {
			r.Scope = ScopeLocal
		}
		defaultMatch(r.Match)
		if len(r.CountBy) > 0 && r.MissingKey == "" {
			r.MissingKey = MissingKeyShared
		}
		for j := range r.CountBy {
			if ip := r.CountBy[j].ClientIP; ip != nil {
				setInt32(&ip.IPv4PrefixLength, DefaultIPv4PrefixLength)
				setInt32(&ip.IPv6PrefixLength, DefaultIPv6PrefixLength)
			}
		}
		if r.Counters == "" {
			r.Counters = CountersPerRoute
		}
		if r.Scope == ScopeLocal {
			setInt32(&r.MaxTrackedKeys, DefaultMaxTrackedKeys)
		}
	}
}

func defaultRetry(b *Retry) {
	setInt32(&b.Attempts, DefaultRetryAttempts)
	if b.RetryOn == nil {
		b.RetryOn = &RetryOn{}
	}
	if b.RetryOn.Conditions == nil {
		b.RetryOn.Conditions = []RetryCondition{RetryOnConnectFailure, RetryOnRefusedStream}
	}
	if b.RetryOn.StatusCodes == nil {
		b.RetryOn.StatusCodes = []int32{503}
	}
	if b.Methods == nil {
		b.Methods = append([]gwapiv1.HTTPMethod(nil), DefaultRetryMethods...)
	}
	if b.Backoff == nil {
		b.Backoff = &RetryBackoff{}
	}
	setDuration(&b.Backoff.BaseInterval, DefaultRetryBaseInterval)
	if base, ok := ParseDuration(*b.Backoff.BaseInterval); ok && b.Backoff.MaxInterval == nil {
		maxI := 10 * base
		if base > 9999*time.Hour { // 10× would not fit the duration syntax (5 digits)
			maxI = base
		}
		setDuration(&b.Backoff.MaxInterval, maxI)
	}
	if g := b.Budget; g != nil {
		setInt32(&g.Percent, DefaultRetryBudgetPercent)
		setDuration(&g.Interval, DefaultRetryBudgetInterval)
		if g.MinRetryRate == nil {
			g.MinRetryRate = &RetryRate{}
		}
		setInt32(&g.MinRetryRate.Count, DefaultMinRetryCount)
		setDuration(&g.MinRetryRate.Interval, DefaultMinRetryInterval)
	}
}

func defaultLoadBalancer(b *LoadBalancer) {
	if b.Type == "" {
		b.Type = LoadBalancerLeastRequest
	}
	switch b.Type {
	case LoadBalancerLeastRequest:
		if b.LeastRequest == nil {
			b.LeastRequest = &LeastRequest{}
		}
		setInt32(&b.LeastRequest.ChoiceCount, DefaultChoiceCount)
	case LoadBalancerRingHash:
		if b.RingHash == nil {
			b.RingHash = &RingHash{}
		}
		// Defaults never contradict a bound the user set.
		minRing, maxRing := int32(DefaultMinRingSize), int32(DefaultMaxRingSize)
		if v := b.RingHash.MaxRingSize; v != nil && *v < minRing {
			minRing = *v
		}
		if v := b.RingHash.MinRingSize; v != nil && *v > maxRing {
			maxRing = *v
		}
		setInt32(&b.RingHash.MinRingSize, minRing)
		setInt32(&b.RingHash.MaxRingSize, maxRing)
	case LoadBalancerMaglev:
		if b.Maglev == nil {
			b.Maglev = &Maglev{}
		}
		setInt32(&b.Maglev.TableSize, DefaultMaglevTableSize)
	}
}

// defaultMatch fills a request match's types: PathPrefix for paths, Exact for values (as
// Gateway API's HTTPRoute matches default).
func defaultMatch(m *RequestMatch) {
	if m == nil {
		return
	}
	defaultPathType(m.Path)
	for _, l := range [][]ValueMatch{m.Headers, m.QueryParams} {
		for i := range l {
			if l[i].Type == "" {
				l[i].Type = ValueMatchExact
			}
		}
	}
}

// defaultPathType sets an unset path match type to PathPrefix, as HTTPRoute path matches do.
func defaultPathType(pm *PathMatch) {
	if pm != nil && pm.Type == "" {
		pm.Type = PathMatchPathPrefix
	}
}

// defaultPercentage sets percent to 100 when neither percent nor fraction is set, and a
// fraction's denominator to 100.
func defaultPercentage(percent **int32, fraction *gwapiv1.Fraction) {
	if fraction != nil {
		setInt32(&fraction.Denominator, DefaultFractionDenominator)
		return
	}
	setInt32(percent, DefaultFaultPercent)
}

func setDuration(p **gwapiv1.Duration, d time.Duration) {
	if *p == nil {
		v := FormatDuration(d)
		*p = &v
	}
}

func setInt32(p **int32, v int32) {
	if *p == nil {
		*p = &v
	}
}

func setBool(p **bool, v bool) {
	if *p == nil {
		*p = &v
	}
}
