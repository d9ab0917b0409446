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
	if !strings.HasPrefix(loc.String(), o.Issuer+"/authorize?") {
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
	if n := o.CodeGrants.Load(); n != 1 {
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
	if n := o.CodeGrants.Load(); n != 1 {
		t.Errorf("%d code grants after a second request, want 1", n)
	}
}

// Case 74: a login started from a path a browser would read as another origin returns to
// "/" on this host, never elsewhere.
func TestOpenRedirectRefusedEndToEnd(t *testing.T) {
	o := newTestOP(t, time.Hour, time.Hour)
	app := newTestApp(t, o, func(string) Config { return baseConfig(o, nil) })
	for _, p := range []string{"//evil.com/x", "///evil.com", "/%2F%2Fevil.com"} {
		t.Run(p, func(t *testing.T) {
			b := newBrowser(t)
			resp, body, visited := b.follow(app.url + p)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%d %q via %v", resp.StatusCode, body, visited)
			}
			last, _ := url.Parse(visited[len(visited)-1])
			if "https://"+last.Host != app.url {
				t.Fatalf("left the app's host: %v", visited)
			}
			if e := decodeEcho(t, body); p != "/%2F%2Fevil.com" && e.Path != "/" {
				t.Errorf("landed on %q, want /", e.Path)
			}
		})
	}
}

// Case 75: a callback whose state matches no state cookie of this browser is refused with
// 400, and no session is set.
func TestCallbackStateMismatch(t *testing.T) {
	o := newTestOP(t, time.Hour, time.Hour)
	clock := &testClock{}
	app := newTestApp(t, o, func(string) Config { return baseConfig(o, clock) })
	victim := newBrowser(t)

	// The attacker starts a login and stops at the callback with their own code and state.
	attacker := newBrowser(t)
	resp, _ := attacker.get(app.url + "/")
	_, _, visited := attacker.follow(resp.Header.Get("Location"))
	var cb string
	for _, v := range visited {
		if strings.HasPrefix(v, app.url+"/oauth2/callback") {
			cb = v
		}
	}
	if cb == "" {
		t.Fatalf("no callback in %v", visited)
	}
	// The victim has a login of their own in flight: a state cookie for another state.
	victim.get(app.url + "/")
	for name, u := range map[string]string{
		"foreign state":   cb,
		"missing state":   app.url + "/oauth2/callback?code=abc",
		"malformed state": app.url + "/oauth2/callback?code=abc&state=%3Cscript%3E",
		"random state":    app.url + "/oauth2/callback?code=abc&state=" + randomString(),
	} {
		resp, _ := victim.get(u)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, resp.StatusCode)
		}
		for _, c := range resp.Cookies() {
			if app.rp.jar.isOurs(c.Name) && !strings.Contains(c.Name, "_st_") {
				t.Errorf("%s: session cookie %s set", name, c.Name)
			}
		}
	}
	if resp, _ := victim.do(http.MethodGet, app.url+"/", http.Header{"Accept": {"application/json"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("victim has a session after the refused callbacks: %d", resp.StatusCode)
	}

	// A state older than StateTTL is refused too.
	late := newBrowser(t)
	resp, _ = late.get(app.url + "/slow")
	idp := resp.Header.Get("Location")
	clock.Advance(StateTTL + time.Minute)
	resp, _, visited = late.follow(idp)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("login after %s: %d, want 400 (%v)", StateTTL, resp.StatusCode, visited)
	}
}

// Case 76: two policies (two RPs, differently configured) with the same issuer and client
// share one login.
func TestOneLoginServesEveryPolicyOfTheClient(t *testing.T) {
	o := newTestOP(t, time.Hour, time.Hour)
	keys := KeyRing{newKey()}
	a := newTestApp(t, o, func(string) Config {
		c := baseConfig(o, nil)
		c.Keys = keys
		return c
	})
	b := newTestApp(t, o, func(string) Config {
		c := baseConfig(o, nil)
		c.Keys = keys
		c.Scopes = []string{"email"}
		c.LogoutPath = "/signout"
		c.UnauthenticatedAction = ActionDeny
		return c
	})
	if a.rp.CookieNamePrefix() != b.rp.CookieNamePrefix() {
		t.Fatalf("prefixes differ: %s, %s", a.rp.CookieNamePrefix(), b.rp.CookieNamePrefix())
	}
	br := newBrowser(t)
	br.login(a.url + "/grafana")
	resp, body := br.get(b.url + "/prometheus")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("second policy: %d %q", resp.StatusCode, body)
	}
	if e := decodeEcho(t, body); e.Sub != "alice-id" {
		t.Errorf("second policy sees %q", e.Sub)
	}
	if n := o.CodeGrants.Load(); n != 1 {
		t.Errorf("%d logins, want 1", n)
	}
}

// Case 77: the callback is the RP's even where the app has a route for the same path.
func TestCallbackInterceptedBeforeRoutes(t *testing.T) {
	o := newTestOP(t, time.Hour, time.Hour)
	app := newTestApp(t, o, func(string) Config { return baseConfig(o, nil) })
	b := newBrowser(t)
	if resp, _ := b.get(app.url + "/oauth2/callback"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bare callback: %d, want the RP's 400 (not the app's 418)", resp.StatusCode)
	}
	e := b.login(app.url + "/x")
	if e.Path != "/x" {
		t.Errorf("landed on %q", e.Path)
	}
	// With a session too, the path stays the RP's.
	if resp, _ := b.get(app.url + "/oauth2/callback"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("callback with a session: %d, want 400", resp.StatusCode)
	}
}

// Case 78: Auto redirects browser navigations only; Redirect and Deny do what they say.
func TestUnauthenticatedActions(t *testing.T) {
	o := newTestOP(t, time.Hour, time.Hour)
	html := "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"
	cases := []struct {
		action Action
		method string
		hdr    http.Header
		want   int
	}{
		{ActionAuto, "GET", http.Header{"Accept": {html}}, 302},
		{ActionAuto, "HEAD", http.Header{"Accept": {html}}, 302},
		{ActionAuto, "GET", http.Header{"Accept": {html}, "Sec-Fetch-Mode": {"navigate"}}, 302},
		{ActionAuto, "GET", http.Header{"Accept": {"application/json"}}, 401},
		{ActionAuto, "GET", http.Header{"Accept": {"*/*"}}, 401},
		{ActionAuto, "GET", http.Header{}, 401},
		{ActionAuto, "GET", http.Header{"Accept": {"text/html;q=0"}}, 401},
		{ActionAuto, "GET", http.Header{"Accept": {html}, "X-Requested-With": {"XMLHttpRequest"}}, 401},
		{ActionAuto, "GET", http.Header{"Accept": {html}, "Sec-Fetch-Mode": {"cors"}}, 401},
		{ActionAuto, "POST", http.Header{"Accept": {html}}, 401},
		{ActionRedirect, "GET", http.Header{"Accept": {"application/json"}}, 302},
		{ActionRedirect, "POST", http.Header{}, 302},
		{ActionDeny, "GET", http.Header{"Accept": {html}}, 401},
	}
	apps := map[Action]*testApp{}
	for _, a := range []Action{ActionAuto, ActionRedirect, ActionDeny} {
		apps[a] = newTestApp(t, o, func(string) Config {
			c := baseConfig(o, nil)
			c.UnauthenticatedAction = a
			return c
		})
	}
	for _, c := range cases {
		b := newBrowser(t)
		b.header = http.Header{}
		resp, _ := b.do(c.method, apps[c.action].url+"/api", c.hdr)
		if resp.StatusCode != c.want {
			t.Errorf("%s %s %v: %d, want %d", c.action, c.method, c.hdr, resp.StatusCode, c.want)
		}
		if c.want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s %v: 401 without WWW-Authenticate", c.action, c.method, c.hdr)
		}
		if c.want == 302 && !strings.HasPrefix(resp.Header.Get("Location"), o.Issuer+"/authorize?") {
			t.Errorf("%s %s %v: Location %q", c.action, c.method, c.hdr, resp.Header.Get("Location"))
		}
	}
}
