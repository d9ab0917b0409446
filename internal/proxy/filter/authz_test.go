package filter

import (
	"net/http/httptest"
	"testing"

	"apoxy.dev/apoxy/internal/ir"
)

func authzRoute(defaultAllow bool, rules ...ir.AuthzRule) *ir.Route {
	rt := prefixRoute("/")
	rt.Auth = &ir.Auth{Authorization: &ir.Authorization{AuthBlock: ir.AuthBlock{Policy: "default/p"}, DefaultAllow: defaultAllow, Rules: rules},
		JWT: &ir.JWTAuth{Optional: true}}
	return rt
}

// authzRun runs only the authorization stage with a given identity.
func authzRun(t *testing.T, rt *ir.Route, id Identity, method, target, remote string) (int, string) {
	t.Helper()
	s, err := newAuthorization(rt, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(method, target, nil)
	if remote != "" {
		r.RemoteAddr = remote
	}
	x, rec := exchange(r, rt)
	x.Identity = id
	if !s.Serve(x) {
		return 200, x.Auth
	}
	return rec.Code, x.Auth
}

func yes() *bool { b := true; return &b }

// Design §5 cases 101-104.
func TestAuthorizationRules(t *testing.T) {
	rt := authzRoute(false,
		ir.AuthzRule{Name: "no-delete", Allow: false, Match: ir.AuthzMatch{Methods: []string{"DELETE"}}},
		ir.AuthzRule{Name: "admins", Allow: true, Match: ir.AuthzMatch{Authenticated: yes(), Claims: []ir.ClaimMatch{{Name: "roles", Values: []string{"admin"}}}}},
		ir.AuthzRule{Name: "writers", Allow: true, Match: ir.AuthzMatch{Scopes: []string{"api:write"}, Paths: []ir.PathMatch{{Type: ir.PathPrefix, Value: "/api"}}}},
		ir.AuthzRule{Name: "org", Allow: true, Match: ir.AuthzMatch{Claims: []ir.ClaimMatch{{Name: "org.id", Values: []string{"o-1"}}}}},
		ir.AuthzRule{Name: "office", Allow: true, Match: ir.AuthzMatch{ClientCIDRs: []string{"192.0.2.0/24"}, Paths: []ir.PathMatch{{Type: ir.PathExact, Value: "/office"}}}},
	)
	admin := Identity{Authenticated: true, Provider: "idp", Claims: map[string]any{"roles": []any{"user", "admin"}}}
	for _, c := range []struct {
		name         string
		id           Identity
		method, path string
		remote       string
		want         int
		log          string
	}{
		{"deny before allow", admin, "DELETE", "/x", "", 403, "deny:no-delete"},
		{"array claim", admin, "GET", "/x", "", 200, "allow:admins"},
		{"string claim", Identity{Authenticated: true, Claims: map[string]any{"roles": "admin"}}, "GET", "/x", "", 200, "allow:admins"},
		{"scope string", Identity{Authenticated: true, Claims: map[string]any{"scope": "api:read api:write"}}, "GET", "/api/v1", "", 200, "allow:writers"},
		{"scp array", Identity{Authenticated: true, Claims: map[string]any{"scp": []any{"api:write"}}}, "GET", "/api", "", 200, "allow:writers"},
		{"scope, wrong path", Identity{Authenticated: true, Claims: map[string]any{"scope": "api:write"}}, "GET", "/apiary", "", 403, "deny:default"},
		{"nested claim", Identity{Authenticated: true, Claims: map[string]any{"org": map[string]any{"id": "o-1"}}}, "GET", "/", "", 200, "allow:org"},
		{"unauthenticated wanting identity: 401", Identity{}, "GET", "/x", "", 401, "deny:default"},
		{"ipv4-mapped ipv6 client", Identity{}, "GET", "/office", "[::ffff:192.0.2.7]:1234", 200, "allow:office"},
		{"other client", Identity{}, "GET", "/office", "198.51.100.1:1234", 401, "deny:default"},
		{"authenticated, no rule: 403", Identity{Authenticated: true, Claims: map[string]any{}}, "GET", "/x", "", 403, "deny:default"},
	} {
		code, log := authzRun(t, rt, c.id, c.method, c.path, c.remote)
		if code != c.want || log != c.log {
			t.Errorf("%s: %d %q, want %d %q", c.name, code, log, c.want, c.log)
		}
	}
	// defaultAction Allow.
	if code, log := authzRun(t, authzRoute(true), Identity{}, "GET", "/", ""); code != 200 || log != "allow:default" {
		t.Errorf("default allow: %d %q", code, log)
	}
}
