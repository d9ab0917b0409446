package filter

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"apoxy.dev/apoxy/internal/ir"
)

type testKey struct {
	key  *ecdsa.PrivateKey
	jwks string
}

func newTestKey(t testing.TB) *testKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	return &testKey{key: k, jwks: string(b)}
}

func (k *testKey) sign(t testing.TB, claims map[string]any) string {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	c := map[string]any{"iss": "https://idp.test/", "exp": time.Now().Add(time.Hour).Unix()}
	for n, v := range claims {
		c[n] = v
	}
	tok, err := josejwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func jwtRoute(k *testKey, optional, forward bool, src ir.TokenSources) *ir.Route {
	rt := prefixRoute("/")
	rt.Auth = &ir.Auth{JWT: &ir.JWTAuth{AuthBlock: ir.AuthBlock{Policy: "default/p"}, Optional: optional, ForwardToken: forward, Providers: []ir.JWTProvider{{
		Name: "idp", Issuer: "https://idp.test/", LocalJWKS: ir.SecretString(k.jwks), Extract: src,
		ClaimToHeaders: []ir.ClaimHeader{{Claim: "sub", Header: "x-user-id"}, {Claim: "roles", Header: "x-roles"}, {Claim: "org", Header: "x-org"},
			{Claim: `https://example\.com/tenant`, Header: "x-tenant"}, {Claim: "org.id", Header: "x-org-id"}}}}}}
	return rt
}

// Design §5 cases 68-71: optional tokens, header spoofing, claim headers (arrays joined,
// objects skipped, escaped dots, nested paths) and removal of the token from where it was found.
func TestJWTStage(t *testing.T) {
	k := newTestKey(t)
	tok := k.sign(t, map[string]any{"sub": "u1", "roles": []string{"a", "b"}, "org": map[string]any{"id": "o-7"}, "https://example.com/tenant": "t-3"})

	// Header spoofing: a client's x-user-id is removed even when the token is missing.
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-User-Id", "spoofed")
	x, rec, _ := run(t, jwtRoute(k, true, true, ir.TokenSources{}), r, nil)
	if rec.Code != 200 || x.Req.Header.Get("X-User-Id") != "" || x.Identity.Authenticated {
		t.Errorf("optional, no token: %d, x-user-id %q, identity %+v", rec.Code, x.Req.Header.Get("X-User-Id"), x.Identity)
	}
	// Optional still refuses a garbage token.
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer garbage")
	if _, rec, _ := run(t, jwtRoute(k, true, true, ir.TokenSources{}), r, nil); rec.Code != 401 || !strings.Contains(rec.Header().Get("Www-Authenticate"), `error="invalid_token"`) {
		t.Errorf("optional, garbage: %d %q", rec.Code, rec.Header().Get("Www-Authenticate"))
	}
	// Not optional: no token is 401 with a bare Bearer challenge.
	if _, rec, _ := run(t, jwtRoute(k, false, true, ir.TokenSources{}), httptest.NewRequest("GET", "/", nil), nil); rec.Code != 401 || rec.Header().Get("Www-Authenticate") != "Bearer" {
		t.Errorf("no token: %d %q", rec.Code, rec.Header().Get("Www-Authenticate"))
	}
	// Claims to headers.
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	x, rec, _ = run(t, jwtRoute(k, false, true, ir.TokenSources{}), r, nil)
	h := x.Req.Header
	if rec.Code != 200 || h.Get("X-User-Id") != "u1" || h.Get("X-Roles") != "a,b" || h.Get("X-Org") != "" || h.Get("X-Tenant") != "t-3" ||
		h.Get("X-Org-Id") != "o-7" || h.Get("Authorization") == "" || x.Identity.Provider != "idp" || x.Auth != "jwt:idp" {
		t.Errorf("claims: %d %v identity %+v log %q", rec.Code, h, x.Identity, x.Auth)
	}
	// forwardToken false: removed from the cookie or the query parameter, only there.
	src := ir.TokenSources{Cookies: []string{"at"}, Query: []string{"access_token"}}
	r = httptest.NewRequest("GET", "/?a=1&access_token="+tok+"&b=2", nil)
	r.Header.Set("Cookie", "theme=dark")
	x, rec, _ = run(t, jwtRoute(k, false, false, src), r, nil)
	if rec.Code != 200 || x.Req.URL.RawQuery != "a=1&b=2" || x.Req.Header.Get("Cookie") != "theme=dark" {
		t.Errorf("query token: %d query %q cookie %q", rec.Code, x.Req.URL.RawQuery, x.Req.Header.Get("Cookie"))
	}
	r = httptest.NewRequest("GET", "/?a=1", nil)
	r.Header.Set("Cookie", "theme=dark; at="+tok)
	r.Header.Set("Authorization", "Basic abc")
	x, rec, _ = run(t, jwtRoute(k, false, false, src), r, nil)
	if rec.Code != 200 || x.Req.URL.RawQuery != "a=1" || x.Req.Header.Get("Cookie") != "theme=dark" || x.Req.Header.Get("Authorization") != "Basic abc" {
		t.Errorf("cookie token: %d query %q cookie %q", rec.Code, x.Req.URL.RawQuery, x.Req.Header.Get("Cookie"))
	}
	// A token where its provider does not read tokens is refused.
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	if _, rec, _ := run(t, jwtRoute(k, false, true, src), r, nil); rec.Code != 200 {
		// Authorization is not among src's places: no token found at all.
		if rec.Code != 401 || rec.Header().Get("Www-Authenticate") != "Bearer" {
			t.Errorf("token in an unread place: %d %q", rec.Code, rec.Header().Get("Www-Authenticate"))
		}
	}
}

// A preflight is never authenticated: the CORS phase answers it before JWT (case 97).
func TestPreflightNotAuthenticated(t *testing.T) {
	rt := jwtRoute(newTestKey(t), false, true, ir.TokenSources{})
	rt.CORS = &ir.CORS{AllowOrigins: []string{"https://app.test"}, AllowMethods: []string{"PUT"}, AllowHeaders: []string{"authorization"}}
	r := httptest.NewRequest("OPTIONS", "/", nil)
	r.Header.Set("Origin", "https://app.test")
	r.Header.Set("Access-Control-Request-Method", "PUT")
	r.Header.Set("Access-Control-Request-Headers", "authorization")
	if _, rec, answered := run(t, rt, r, nil); !answered || rec.Code != 204 {
		t.Errorf("preflight: %v %d", answered, rec.Code)
	}
	r = httptest.NewRequest("PUT", "/", nil)
	r.Header.Set("Origin", "https://app.test")
	if _, rec, _ := run(t, rt, r, nil); rec.Code != 401 || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.test" {
		t.Errorf("actual request without token: %d %v (a 401 still carries CORS headers so the page can read it)", rec.Code, rec.Header())
	}
}

func BenchmarkJWTStageCached(b *testing.B) {
	k := newTestKey(b)
	tok := k.sign(b, map[string]any{"sub": "u1"})
	rt := jwtRoute(k, false, true, ir.TokenSources{})
	c, err := Compile(rt, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		x, _ := exchange(r, rt)
		if c.Run(x) {
			b.Fatal("refused")
		}
	}
}
