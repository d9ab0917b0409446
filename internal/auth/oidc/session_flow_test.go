package oidc

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// sessionCookieHeader is the Cookie header value of the browser's session chunks for u.
func sessionCookieHeader(b *browser, u, prefix string) string {
	var parts []string
	for _, c := range b.cookies(u) {
		if strings.HasPrefix(c.Name, prefix+"_") && !strings.Contains(c.Name, "_st_") {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	return strings.Join(parts, "; ")
}

// Case 79: an access token near expiry is refreshed transparently, and concurrent requests
// holding the same refresh token share one refresh.
func TestRefreshNearExpiry(t *testing.T) {
	o := newTestOP(t, 2*time.Minute, 2*time.Hour)
	clock := &testClock{}
	app := newTestApp(t, o, func(string) Config { return baseConfig(o, clock) })
	b := newBrowser(t)
	b.login(app.url + "/")
	before := sessionCookieHeader(b, app.url, app.rp.CookieNamePrefix())

	clock.Advance(70 * time.Second) // 50 s left: under RefreshMargin
	cookie := sessionCookieHeader(b, app.url, app.rp.CookieNamePrefix())
	var wg sync.WaitGroup
	codes := make([]int, 8)
	refreshed := make([]bool, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", app.url+"/p", nil)
			req.Header.Set("Cookie", cookie)
			req.Header.Set("Accept", "application/json")
			resp, err := tlsClient().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
			refreshed[i] = len(resp.Cookies()) > 0
		}()
	}
	wg.Wait()
	for i := range codes {
		if codes[i] != http.StatusOK || !refreshed[i] {
			t.Errorf("request %d: %d, new cookies %v", i, codes[i], refreshed[i])
		}
	}
	if n := o.RefreshGrants.Load(); n != 1 {
		t.Errorf("%d refresh grants for 8 concurrent requests, want 1", n)
	}

	// The browser's own request gets the new cookies; later ones need no refresh.
	resp, body := b.do("GET", app.url+"/q", http.Header{"Accept": {"application/json"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if after := sessionCookieHeader(b, app.url, app.rp.CookieNamePrefix()); after == before {
		t.Error("the session cookies did not change after the refresh")
	}
	clock.Advance(10 * time.Second)
	n := o.RefreshGrants.Load()
	if resp, _ := b.get(app.url + "/r"); resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 0 {
		t.Errorf("after the refresh: %d, %d cookies", resp.StatusCode, len(resp.Cookies()))
	}
	if o.RefreshGrants.Load() != n {
		t.Error("refreshed again with fresh tokens")
	}
}

// Case 79: when refreshing fails the user logs in again: at once when the provider refuses
// the refresh token, once the tokens expire when it is unreachable.
func TestRefreshFailureSendsToLogin(t *testing.T) {
	o := newTestOP(t, 2*time.Minute, 2*time.Hour)
	clock := &testClock{}
	app := newTestApp(t, o, func(string) Config { return baseConfig(o, clock) })
	b := newBrowser(t)
	b.login(app.url + "/")

	// Provider down, tokens still valid for 50 s: served with them.
	o.FailTokens.Store(true)
	clock.Advance(70 * time.Second)
	if resp, _ := b.get(app.url + "/a"); resp.StatusCode != http.StatusOK {
		t.Fatalf("transient refresh failure with valid tokens: %d, want 200", resp.StatusCode)
	}
	// Past expiry and still down: login.
	clock.Advance(time.Minute)
	if resp, _ := b.get(app.url + "/b"); resp.StatusCode != http.StatusFound {
		t.Fatalf("expired, provider down: %d, want 302", resp.StatusCode)
	}
	o.FailTokens.Store(false)

	// A fresh login, then the provider revokes the refresh token: login at once.
	b2 := newBrowser(t)
	b2.login(app.url + "/")
	o.RevokeAll()
	clock.Advance(70 * time.Second)
	resp, _ := b2.get(app.url + "/c")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), o.Issuer) {
		t.Fatalf("revoked refresh token: %d %s, want 302 to the provider", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := b2.do("GET", app.url+"/c", http.Header{"Accept": {"application/json"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoked refresh token, XHR: %d, want 401", resp.StatusCode)
	}
	// And the login works again.
	if e := b2.login(app.url + "/again"); e.Path != "/again" {
		t.Errorf("relogin landed on %q", e.Path)
	}
}

// Without RefreshTokens the session ends with the tokens.
func TestNoRefreshEndsWithTokens(t *testing.T) {
	o := newTestOP(t, 2*time.Minute, 2*time.Hour)
	clock := &testClock{}
	app := newTestApp(t, o, func(string) Config {
		c := baseConfig(o, clock)
		c.RefreshTokens = false
		return c
	})
	b := newBrowser(t)
	b.login(app.url + "/")
	clock.Advance(90 * time.Second)
	if resp, _ := b.get(app.url + "/a"); resp.StatusCode != http.StatusOK {
		t.Fatalf("before expiry: %d", resp.StatusCode)
	}
	clock.Advance(time.Minute)
	if resp, _ := b.get(app.url + "/b"); resp.StatusCode != http.StatusFound {
		t.Fatalf("after expiry: %d, want 302", resp.StatusCode)
	}
	if n := o.RefreshGrants.Load(); n != 0 {
		t.Errorf("%d refresh grants with RefreshTokens off", n)
	}
}

// Case 79: absoluteTimeout ends the session however often it was refreshed.
func TestAbsoluteTimeout(t *testing.T) {
	o := newTestOP(t, 20*time.Minute, 3*time.Hour)
	clock := &testClock{}
	app := newTestApp(t, o, func(string) Config {
		c := baseConfig(o, clock)
		c.AbsoluteTimeout = time.Hour
		return c
	})
	b := newBrowser(t)
	b.login(app.url + "/")
	for i := range 3 {
		clock.Advance(19 * time.Minute)
		if resp, _ := b.get(app.url + "/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("refresh %d: %d", i, resp.StatusCode)
		}
	}
	if n := o.RefreshGrants.Load(); n != 3 {
		t.Errorf("%d refreshes, want 3", n)
	}
	clock.Advance(4 * time.Minute) // 61 min after the login, tokens fresh
	if resp, _ := b.get(app.url + "/"); resp.StatusCode != http.StatusFound {
		t.Fatalf("past the absolute timeout: %d, want 302", resp.StatusCode)
	}
}

// Case 80: logout clears every chunk and ends the session at the provider with
// id_token_hint and post_logout_redirect_uri.
func TestLogoutEndsSessionAtProvider(t *testing.T) {
	o := newTestOP(t, time.Hour, time.Hour)
	app := newTestApp(t, o, func(string) Config {
		c := baseConfig(o, nil)
		c.PostLogoutRedirectURL = "/bye"
		return c
	})
	b := newBrowser(t)
	b.login(app.url + "/")
	resp, _ := b.get(app.url + "/logout")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	cleared := setCookies(resp)
	for i := range MaxChunks {
		c := cleared[app.rp.jar.chunkName(i)]
		if c == nil || c.MaxAge >= 0 {
			t.Errorf("chunk %d not cleared: %+v", i, c)
		}
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), o.Issuer+"/end_session?") || q.Get("id_token_hint") == "" ||
		q.Get("post_logout_redirect_uri") != app.url+"/bye" || q.Get("client_id") != testClientID {
		t.Fatalf("logout went to %s", loc)
	}
	if sessionCookieHeader(b, app.url, app.rp.CookieNamePrefix()) != "" {
		t.Error("session cookies left in the browser")
	}
	// The provider accepts the hint and sends the browser back.
	resp, _ = b.get(loc.String())
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != app.url+"/bye" {
		t.Fatalf("end_session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if o.EndSessions.Load() != 1 {
		t.Error("end_session not called")
	}
	if resp, _ := b.do("GET", app.url+"/", http.Header{"Accept": {"application/json"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after logout: %d, want 401", resp.StatusCode)
	}
}

// Case 80: without an end-session endpoint, logout goes to postLogoutRedirectURL.
func TestLogoutWithoutEndSession(t *testing.T) {
	o := newTestOP(t, time.Hour, time.Hour)
	app := newTestApp(t, o, func(string) Config {
		c := baseConfig(o, nil)
		// Every endpoint configured: no discovery, so no end_session_endpoint.
		c.AuthorizationEndpoint = o.Issuer + "/authorize"
		c.TokenEndpoint = o.Issuer + "/oauth/token"
		c.JWKSURI = o.Issuer + "/keys"
		c.PostLogoutRedirectURL = "/bye"
		return c
	})
	b := newBrowser(t)
	b.login(app.url + "/")
	resp, _ := b.get(app.url + "/logout")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/bye" {
		t.Fatalf("logout: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if o.DiscoveryHits.Load() != 0 {
		t.Error("discovery ran although every endpoint was configured")
	}
}

// Case 81: after a key rotation, sessions sealed under the previous key stay valid and are
// re-sealed under the new one; a ring without the key refuses them.
func TestKeyRotation(t *testing.T) {
	o := newTestOP(t, time.Hour, time.Hour)
	k1, k2 := newKey(), newKey()
	mk := func(keys KeyRing) *testApp {
		return newTestApp(t, o, func(string) Config {
			c := baseConfig(o, nil)
			c.Keys = keys
			return c
		})
	}
	old, rotated, dropped, foreign := mk(KeyRing{k1}), mk(KeyRing{k2, k1}), mk(KeyRing{k2}), mk(KeyRing{newKey()})
	b := newBrowser(t)
	b.login(old.url + "/")
	sealedK1 := sessionCookieHeader(b, old.url, old.rp.CookieNamePrefix())

	// Before the rotated RP re-seals, the k2-only RP and a foreign ring refuse the k1 cookie.
	for name, a := range map[string]*testApp{"k2 only": dropped, "foreign": foreign} {
		resp, _ := b.do("GET", a.url+"/", http.Header{"Accept": {"application/json"}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s ring with a k1 session: %d, want 401", name, resp.StatusCode)
		}
	}
	resp, _ := b.get(rotated.url + "/")
	if resp.StatusCode != http.StatusOK || len(resp.Cookies()) == 0 {
		t.Fatalf("rotated ring: %d with %d new cookies, want 200 re-sealing", resp.StatusCode, len(resp.Cookies()))
	}
	d, err := dropped.rp.DecodeSession(chunkValues(b, dropped))
	if err != nil {
		t.Fatalf("the re-sealed session does not open under k2 alone: %v", err)
	}
	if _, err := old.rp.DecodeSession(chunkValues(b, old)); err == nil {
		t.Error("the re-sealed session still opens under k1")
	}
	if d.IDToken == "" {
		t.Error("re-sealed session without ID token")
	}
	if resp, _ := b.get(dropped.url + "/"); resp.StatusCode != http.StatusOK {
		t.Errorf("k2 ring after re-sealing: %d", resp.StatusCode)
	}
	if resp, _ := b.get(old.url + "/"); resp.StatusCode != http.StatusFound {
		t.Errorf("k1 ring with a k2 session: %d, want 302", resp.StatusCode)
	}
	_ = sealedK1
}

// chunkValues is the browser's session chunk values for app, in order.
func chunkValues(b *browser, app *testApp) []string {
	byName := map[string]string{}
	for _, c := range b.cookies(app.url) {
		byName[c.Name] = c.Value
	}
	var vals []string
	for i := range MaxChunks {
		v, ok := byName[app.rp.jar.chunkName(i)]
		if !ok {
			break
		}
		vals = append(vals, v)
	}
	return vals
}

// Case 82: two replicas with the same keys honour each other's sessions.
func TestTwoReplicas(t *testing.T) {
	o := newTestOP(t, 2*time.Minute, time.Hour)
	clock := &testClock{}
	keys := KeyRing{newKey()}
	mk := func() *testApp {
		return newTestApp(t, o, func(string) Config {
			c := baseConfig(o, clock)
			c.Keys = keys
			return c
		})
	}
	a, bb := mk(), mk()
	br := newBrowser(t)
	br.login(a.url + "/from-a")
	resp, body := br.get(bb.url + "/on-b?q=1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("replica B: %d %q", resp.StatusCode, body)
	}
	// B refreshes, A honours B's refreshed session.
	clock.Advance(90 * time.Second)
	if resp, _ := br.get(bb.url + "/"); resp.StatusCode != http.StatusOK || len(resp.Cookies()) == 0 {
		t.Fatalf("refresh on B: %d", resp.StatusCode)
	}
	clock.Advance(20 * time.Second)
	if resp, _ := br.get(a.url + "/"); resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 0 {
		t.Fatalf("A after B refreshed: %d, %d cookies (want 200, no refresh)", resp.StatusCode, len(resp.Cookies()))
	}
	if n := o.CodeGrants.Load(); n != 1 {
		t.Errorf("%d logins, want 1", n)
	}
}

// Tampered, truncated, reordered and wrong-prefix cookies are no session.
func TestTamperedCookiesRefused(t *testing.T) {
	o := newTestOP(t, time.Hour, time.Hour)
	app := newTestApp(t, o, func(string) Config { return baseConfig(o, nil) })
	other := newTestApp(t, o, func(string) Config {
		c := baseConfig(o, nil)
		c.Keys = app.rp.cfg.Keys
		c.CookieNamePrefix = "other"
		return c
	})
	b := newBrowser(t)
	b.login(app.url + "/")
	vals := chunkValues(b, app)
	p := app.rp.CookieNamePrefix()
	flip := func(s string, i int) string {
		bs := []byte(s)
		if bs[i] == 'A' {
			bs[i] = 'B'
		} else {
			bs[i] = 'A'
		}
		return string(bs)
	}
	v0 := vals[0]
	cases := map[string]string{
		"flipped byte":     p + "_0=" + flip(v0, len(v0)/2),
		"flipped tag":      p + "_0=" + flip(v0, len(v0)-1),
		"truncated":        p + "_0=" + v0[:len(v0)-10],
		"bad count":        p + "_0=9" + v0[1:],
		"not base64":       p + "_0=" + v0[:10] + "!!" + v0[12:],
		"empty":            p + "_0=",
		"garbage":          p + "_0=1.AAAA",
		"other prefix":     "other_0=" + v0,
		"only a state":     p + "_st_abcdefghijklmnop=" + v0,
		"huge":             p + "_0=1." + strings.Repeat("A", 3900),
		"chunk 1 only":     p + "_1=" + v0,
		"state count zero": p + "_0=0." + v0[2:],
	}
	for name, cookie := range cases {
		for _, a := range []*testApp{app, other} {
			req, _ := http.NewRequest("GET", a.url+"/", nil)
			req.Header.Set("Cookie", cookie)
			req.Header.Set("Accept", "application/json")
			resp, err := tlsClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s at %s: %d, want 401", name, a.rp.CookieNamePrefix(), resp.StatusCode)
			}
		}
	}
	// The genuine cookie still works (the checks above were not vacuous).
	req, _ := http.NewRequest("GET", app.url+"/", nil)
	req.Header.Set("Cookie", p+"_0="+v0+"; unrelated=1")
	resp, err := tlsClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("genuine cookie: %d", resp.StatusCode)
	}
}

// Other cookies reach the upstream unchanged; the RP's do not.
func TestUpstreamKeepsOtherCookies(t *testing.T) {
	o := newTestOP(t, time.Hour, time.Hour)
	app := newTestApp(t, o, func(string) Config { return baseConfig(o, nil) })
	b := newBrowser(t)
	b.login(app.url + "/")
	p := app.rp.CookieNamePrefix()
	req, _ := http.NewRequest("GET", app.url+"/", nil)
	req.Header.Add("Cookie", "a=1; "+sessionCookieHeader(b, app.url, p)+"; b=x=y")
	req.Header.Add("Cookie", p+"_st_abcdefghijklmnop=zz; c=3")
	resp, err := tlsClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		body.WriteString(string(buf[:n]))
		if err != nil {
			break
		}
	}
	e := decodeEcho(t, body.String())
	if e.Cookie != "a=1; b=x=y" {
		t.Errorf("upstream Cookie %q, want %q (first line)", e.Cookie, "a=1; b=x=y")
	}
}
