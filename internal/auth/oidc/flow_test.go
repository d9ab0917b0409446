package oidc

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Case 73: the full code flow with PKCE; the callback sets the cookies and the user lands on
// the original URL, path and query preserved.
func TestCodeFlowReturnsToOriginalURL(t *testing.T) {
	o := newTestOP(t, time.Hour, time.Hour)
	app := newTestApp(t, o, func(string) Config { return baseConfig(o, nil) })
	b := newBrowser(t)

	// Step by step: the navigation is redirected to the provider with PKCE S256.
	resp, _ := b.get(app.url + "/dash/board?tab=a%20b&x=1")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("unauthenticated navigation: %d, want 302", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), o.issuer+"/authorize?") {
		t.Fatalf("redirected to %s, not the provider's authorization endpoint", loc)
	}
	for k, want := range map[string]string{
		"response_type": "code", "client_id": testClientID, "code_challenge_method": "S256",
		"redirect_uri": app.url + "/oauth2/callback", "scope": "openid email profile offline_access",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) != 43 {
			t.Errorf("%s = %q, want 43 base64url characters", k, q.Get(k))
		}
	}
	st := setCookies(resp)
	var stateCookie *http.Cookie
	for name, c := range st {
		if strings.HasPrefix(name, app.rp.CookieNamePrefix()+"_st_") {
			stateCookie = c
		}
	}
	if stateCookie == nil || !stateCookie.HttpOnly || !stateCookie.Secure || stateCookie.MaxAge != 600 || stateCookie.Path != "/oauth2/callback" {
		t.Fatalf("state cookie %+v", stateCookie)
	}

	// The rest of the dance: provider login, callback, back to the original URL.
	resp, body, visited := b.follow(loc.String())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("dance ended with %d %q via %v", resp.StatusCode, body, visited)
	}
	e := decodeEcho(t, body)
	if e.Path != "/dash/board" || e.Query != "tab=a%20b&x=1" {
		t.Errorf("landed on %q ? %q, want /dash/board ? tab=a%%20b&x=1", e.Path, e.Query)
	}
	if e.Sub != "alice-id" || e.Claims["email"] != "alice@example.com" || !e.Access {
		t.Errorf("session sub %q claims %v access %v", e.Sub, e.Claims, e.Access)
	}
	if strings.Contains(e.Cookie, app.rp.CookieNamePrefix()) {
		t.Errorf("the upstream saw the RP's cookies: %q", e.Cookie)
	}
	if n := o.codeGrants.Load(); n != 1 {
		t.Errorf("%d code grants, want 1", n)
	}
	// The state cookie is spent; the session cookie is set with the right attributes.
	for _, c := range b.cookies(app.url + "/oauth2/callback") {
		if strings.Contains(c.Name, "_st_") {
			t.Errorf("state cookie %s left after the callback", c.Name)
		}
	}

	// Later requests pass without a new login.
	resp, body = b.get(app.url + "/other?y=2")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with a session: %d %q", resp.StatusCode, body)
	}
	if e := decodeEcho(t, body); e.Path != "/other" || e.Sub != "alice-id" {
		t.Errorf("echo %+v", e)
	}
	if n := o.codeGrants.Load(); n != 1 {
		t.Errorf("%d code grants after a second request, want 1", n)
	}
}
