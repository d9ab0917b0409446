package filter

import "apoxy.dev/apoxy/internal/ir"

// Builder compiles one IR filter of a route (or of one of its backendRefs) into its stage,
// with the process's shared services (env may be nil in tests of filters that need none).
type Builder func(f *ir.Filter, r *ir.Route, env *Env) (Stage, error)

// RouteStage contributes a stage to a phase from the route as a whole (its action today;
// policies attached to the route tomorrow). Build returns a nil Stage when the route does
// not need one.
type RouteStage struct {
	Phase Phase
	Name  string
	Build func(r *ir.Route, env *Env) (Stage, error)
}

// filters maps each IR filter type to its stage. One line per filter type.
var filters = map[ir.FilterType]Builder{
	ir.FilterRequestHeaders:  newRequestHeaders,
	ir.FilterResponseHeaders: newResponseHeaders,
	ir.FilterURLRewrite:      newURLRewrite,
	ir.FilterRequestMirror:   newMirror,
	ir.FilterCORS:            newCORS,
	ir.FilterCompression:     newCompression,
	ir.FilterDirectResponse:  newDirectResponseFilter,
	ir.FilterEdgeFunction:    newEdgeFunction,
}

// filterPhases place a filter type's stage in a phase before the route filters' own. The CORS
// filter answers preflights before authentication, as a policy's cors block does.
var filterPhases = map[ir.FilterType]Phase{
	ir.FilterCORS:         PhaseCORS,
	ir.FilterEdgeFunction: PhaseEdgeFunction,
}

// routeStages are the stages contributed per phase, in order. One line per contributor.
var routeStages = []RouteStage{
	{Phase: PhaseCORS, Name: "cors-policy", Build: newPolicyCORS},
	{Phase: PhaseRateLimit, Name: "rate-limit", Build: newRateLimitPreAuth},
	{Phase: PhaseAuthentication, Name: "basic-auth", Build: newBasicAuth},
	{Phase: PhaseAuthentication, Name: "jwt", Build: newJWTAuth},
	{Phase: PhaseAuthentication, Name: "oidc", Build: newOIDCAuth},
	{Phase: PhaseAuthorization, Name: "authorization", Build: newAuthorization},
	{Phase: PhaseAuthorization, Name: "ext-authz", Build: newExtAuth},
	{Phase: PhaseRateLimitPostAuth, Name: "rate-limit-post-auth", Build: newRateLimitPostAuth},
	{Phase: PhaseFault, Name: "fault-injection", Build: newFault},
	{Phase: PhaseAction, Name: "redirect", Build: newRedirect},
	{Phase: PhaseAction, Name: "direct-response", Build: newDirectResponse},
}
