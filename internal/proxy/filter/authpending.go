package filter

import (
	"net/http"

	"apoxy.dev/apoxy/internal/ir"
)

// authPending fails closed for an auth block this data plane does not enforce yet (oidc while
// it is being built): a route that asks for them must never pass
// unauthenticated. Remove a block's line from pendingBlocks when its stage exists.
type authPending struct{ block string }

// pendingBlocks are the auth blocks without a stage yet, and how to tell a route sets one.
var pendingBlocks = []struct {
	name string
	set  func(*ir.Auth) bool
}{
	{"oidc", func(a *ir.Auth) bool { return a.OIDC != nil }},
}

func newAuthPending(r *ir.Route, _ *Env) (Stage, error) {
	if r.Auth == nil {
		return nil, nil
	}
	for _, b := range pendingBlocks {
		if b.set(r.Auth) {
			return authPending{b.name}, nil
		}
	}
	return nil, nil
}

func (s authPending) Serve(x *Exchange) bool {
	x.Auth = appendDecision(x.Auth, s.block+":not-enforced")
	x.Error("authentication is unavailable", http.StatusServiceUnavailable)
	return true
}
