package ir

// PolicySource names the object one block, field or rate-limit rule of a route's effective
// TrafficPolicy came from. The translator records it so `apoxy explain` can say why a route
// behaves as it does; the data plane never reads it.
type PolicySource struct {
	// Block is a TrafficPolicy block ("retry", "circuitBreaker"), a field the route rule itself
	// may set ("timeouts.request", "retry.attempts") or a rate-limit rule
	// ("rateLimit.rules[per-ip]").
	Block string `json:"block"`
	// Source is the object, e.g. "TrafficPolicy default/g (Gateway default/edge, Override)"
	// or "HTTPRoute default/api rule login".
	Source string `json:"source"`
	// Disabled says the source turns the block off (disabled: true): the platform default
	// applies and nothing is inherited.
	Disabled bool `json:"disabled,omitempty"`
}

// PolicySourceOf returns the source recorded for a block, or nil.
func (r *Route) PolicySourceOf(block string) *PolicySource {
	for i := range r.PolicySources {
		if r.PolicySources[i].Block == block {
			return &r.PolicySources[i]
		}
	}
	return nil
}
