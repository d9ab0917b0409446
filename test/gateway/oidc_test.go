package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/auth/oidc"
	"apoxy.dev/apoxy/internal/auth/oidc/oidctest"
	"apoxy.dev/apoxy/internal/edgetest"
)

// These tests run AuthPolicy oidc blocks through the gateway with real HTTP: a browser-like
// client with a cookie jar, the gateway's HTTPS listener (the session cookies are Secure, as
// by default), the gateway's relying party, and an in-process OpenID provider (oidctest)
// serving Google's issuer URL, which design §4.4 names, on a loopback address with a
// certificate from the test's CA. The gateway resolves accounts.google.com through edgetest's
// Hosts; the test's browser through its dialer.

const (
	googleIssuer        = "https://accounts.google.com"
	grafanaClientID     = "1234567890-abc.apps.googleusercontent.com"
	grafanaClientSecret = "gr4fana-client-s3cret"
)

var (
	// staff is a Google Workspace user of example.com: the ID token has hd=example.com.
	staff = oidctest.User{Login: "alice", Subject: "alice-id", Email: "alice@example.com", Name: "Alice",
		Claims: map[string]any{"hd": "example.com"}}
	// outsider is a consumer account: no hd claim.
	outsider = oidctest.User{Login: "mallory", Subject: "mallory-id", Email: "mallory@gmail.com", Name: "Mallory"}
	// bigStaff's ID token is large enough that the session takes several cookie chunks.
	bigStaff = oidctest.User{Login: "bob", Subject: "bob-id", Email: "bob@example.com", Name: "Bob",
		Claims: map[string]any{"hd": "example.com", "groups": strings.Split(strings.Repeat("team-with-a-long-name,", 400), ",")}}
)

// oidcPrefix is the cookie name prefix of every policy of Google's issuer and the Grafana
// client (the default: stable across policies and routes).
var oidcPrefix = oidc.DefaultCookieNamePrefix(googleIssuer, grafanaClientID)

// oidcWorld is what the gateways of one test share: the CA, the provider and the app (an
// echo server behind Backend grafana).
type oidcWorld struct {
	t       *testing.T
	ca      *testCA
	idp     *oidctest.Provider
	app     net.Listener
	appIP   string
	appHits atomic.Int64
	// gatewayCert is served by every gateway's HTTPS listener (default-tls).
	gatewayCert string
}

// newOIDCWorld starts the provider on idpIP:443 and the app on appIP.
func newOIDCWorld(t *testing.T, idpIP, appIP string) *oidcWorld {
	t.Helper()
	w := &oidcWorld{t: t, ca: newCA(t), appIP: appIP}
	cert := w.ca.issue(t, "accounts.google.com")
	w.idp = oidctest.NewProvider(t, oidctest.Options{Issuer: googleIssuer, Addr: idpIP + ":443", Certificate: &cert,
		ClientID: grafanaClientID, ClientSecret: grafanaClientSecret, Users: []oidctest.User{staff, outsider, bigStaff}, FormLogin: true})
	w.app = echoServer(t, appIP+":0", "grafana", &w.appHits)
	w.gatewayCert = tlsSecret("default-tls", w.ca.issue(t, "ops.example.com", "*.ops.example.com", "*.example.com"))
	return w
}

// gateway starts a gateway (edgetest; secret is its OIDC session secret, nil for a random
// one) serving design §4.4 as published, but for the client secret and the backend port,
// with a certificate from the world's CA on its HTTPS listener. It returns the gateway and
// the base URL of the Grafana route on its HTTPS listener.
func (w *oidcWorld) gateway(t *testing.T, secret []byte) (*edgetest.Env, string) {
	t.Helper()
	idpIP, _, _ := net.SplitHostPort(w.idp.Addr())
	e := edgetest.Start(t, edgetest.Options{RootCAs: w.ca.pool, SessionSecret: secret, Hosts: map[string][]string{
		"accounts.google.com": {idpIP}, "grafana.internal.example.com": {w.appIP}}})
	_, port, _ := net.SplitHostPort(e.TLSAddr)
	base := "https://ops.example.com:" + port
	w.register(base)
	doc := example(t, "4.4-grafana-login.yaml", portOf(w.app))
	if !strings.Contains(doc, "client-secret: REPLACE_ME") {
		t.Fatal("the §4.4 example no longer has the client secret placeholder")
	}
	e.Apply(w.gatewayCert + strings.Replace(doc, "client-secret: REPLACE_ME", "client-secret: "+grafanaClientSecret, 1))
	b := w.browser(t)
	e.WaitFor("the login in force on "+base, func() error {
		resp, body, err := b.try(http.MethodGet, base+"/", nil)
		if err != nil {
			return err // includes the certificate check: the CA's certificate is served
		}
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, googleIssuer+"/authorize?") {
			return fmt.Errorf("%d to %q: %s", resp.StatusCode, loc, body)
		}
		return nil
	})
	return e, base
}

// register lets the provider send logins back to base's callback, and logouts to base's "/".
func (w *oidcWorld) register(base string) {
	w.idp.AllowRedirect(base+"/oauth2/callback", base+"/")
}

// browser is a cookie-keeping HTTPS client that does not follow redirects (each step of the
// dance is visible) and sends what a browser navigation sends.
type browser struct {
	t   *testing.T
	w   *oidcWorld
	c   *http.Client
	jar *cookiejar.Jar
}

func (w *oidcWorld) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: w.ca.pool},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			switch {
			case host == "accounts.google.com":
				addr = w.idp.Addr()
			case strings.HasSuffix(host, ".example.com"):
				addr = net.JoinHostPort("127.0.0.1", port) // the gateway's listeners
			default:
				return nil, fmt.Errorf("the browser was sent to %s", addr)
			}
			return dialer.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &browser{t: t, w: w, jar: jar, c: &http.Client{Transport: tr, Jar: jar, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// navigation is the Accept header of a browser's navigation.
const navigation = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// try sends a request: a navigation unless hdr sets Accept; a POST sends form.
func (b *browser) try(method, u string, form url.Values, hdr ...string) (*http.Response, []byte, error) {
	var req *http.Request
	if form != nil {
		req, _ = http.NewRequest(method, u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req, _ = http.NewRequest(method, u, nil)
	}
	req.Header.Set("Accept", navigation)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	return resp, readAll(resp), nil
}

// do is try, failing the test on a transport error.
func (b *browser) do(method, u string, hdr ...string) (*http.Response, []byte) {
	b.t.Helper()
	resp, body, err := b.try(method, u, nil, hdr...)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, u, err)
	}
	return resp, body
}

// get is a navigation to u.
func (b *browser) get(u string) (*http.Response, []byte) {
	b.t.Helper()
	return b.do(http.MethodGet, u)
}

// xhr is a script's request (fetch with Accept: application/json).
func (b *browser) xhr(u string) (*http.Response, []byte) {
	b.t.Helper()
	return b.do(http.MethodGet, u, "Accept", "application/json")
}

// hop is one request of a followed chain.
type hop struct {
	method, url string
	resp        *http.Response
	body        []byte
}

// follow navigates to u and follows redirects; at the provider's login form it signs in as
// login (with login "" it stops there). It returns every hop, the last one being the answer
// that is not a redirect.
func (b *browser) follow(u, login string) []hop {
	b.t.Helper()
	var hops []hop
	method := http.MethodGet
	var form url.Values
	for range 20 {
		resp, body, err := b.try(method, u, form)
		if err != nil {
			b.t.Fatalf("%s %s: %v (after %s)", method, u, err, chain(hops))
		}
		hops = append(hops, hop{method, u, resp, body})
		switch {
		case resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther:
			next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				b.t.Fatalf("bad Location %q", resp.Header.Get("Location"))
			}
			u, method, form = next.String(), http.MethodGet, nil
		case resp.StatusCode == http.StatusOK && method == http.MethodGet && strings.HasPrefix(u, googleIssuer+"/login?") && login != "":
			method, form = http.MethodPost, url.Values{"username": {login}}
		default:
			return hops
		}
	}
	b.t.Fatalf("too many redirects: %s", chain(hops))
	return nil
}

// login follows from u through the provider's login as login and returns the app's echo of
// the request it lands on (failing unless that is a 200 from the app).
func (b *browser) login(u, login string) echo {
	b.t.Helper()
	hops := b.follow(u, login)
	last := hops[len(hops)-1]
	if last.resp.StatusCode != http.StatusOK {
		b.t.Fatalf("login from %s ended with %d %s: %s", u, last.resp.StatusCode, last.body, chain(hops))
	}
	return echoOf(b.t, last.resp, last.body)
}

func chain(hops []hop) string {
	var parts []string
	for _, h := range hops {
		parts = append(parts, fmt.Sprintf("%s %s → %d", h.method, h.url, h.resp.StatusCode))
	}
	return strings.Join(parts, "; ")
}

// sessionChunks are the browser's session cookies for u (not login states), by name.
func (b *browser) sessionChunks(u string) map[string]string {
	pu, _ := url.Parse(u)
	out := map[string]string{}
	for _, c := range b.jar.Cookies(pu) {
		if strings.HasPrefix(c.Name, oidcPrefix+"_") && !strings.HasPrefix(c.Name, oidcPrefix+"_st_") {
			out[c.Name] = c.Value
		}
	}
	return out
}

func header(ec echo, name string) string { return http.Header(ec.Headers).Get(name) }

// Design §4.4 applied as published, through the gateway: a browser's whole login dance
// (case 73) with the cookies' attributes; the authorization rule on the hd claim; and §5
// cases 74, 75, 76, 77, 78, 79, 80, 84; status Accepted, ResolvedRefs and Healthy, and
// Healthy=False/OIDCDiscoveryFailed for a provider that is down.
func TestOIDCGrafanaLogin(t *testing.T) {
	w := newOIDCWorld(t, "127.0.0.73", "127.0.0.74")
	e, base := w.gateway(t, nil)

	t.Run("accepted", func(t *testing.T) {
		e.WaitFor("grafana-login Accepted and ResolvedRefs", func() error {
			for _, typ := range []string{"Accepted", "ResolvedRefs"} {
				if st, reason, msg := kindCondition(e, "AuthPolicy", "grafana-login", typ); st != "True" || reason != typ {
					return fmt.Errorf("%s %s %s %q", typ, st, reason, msg)
				}
			}
			return nil
		})
	})

	t.Run("73 code flow with PKCE back to the original URL", func(t *testing.T) {
		b := w.browser(t)
		b.jar.SetCookies(&url.URL{Scheme: "https", Host: "ops.example.com"}, []*http.Cookie{{Name: "grafana_theme", Value: "dark"}})
		grants := w.idp.CodeGrants.Load()
		start := base + "/d/abc/my-dashboard?orgId=1&from=now-6h&var-host=a%20b"
		resp, _ := b.get(start)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), googleIssuer+"/authorize?") {
			t.Fatalf("navigation without a session: %d to %q, want 302 to the provider", resp.StatusCode, resp.Header.Get("Location"))
		}
		q := loc.Query()
		for k, want := range map[string]string{"response_type": "code", "client_id": grafanaClientID, "scope": "openid email",
			"redirect_uri": base + "/oauth2/callback", "code_challenge_method": "S256"} {
			if got := q.Get(k); got != want {
				t.Errorf("authorization request %s = %q, want %q", k, got, want)
			}
		}
		for _, k := range []string{"state", "nonce", "code_challenge"} {
			if len(q.Get(k)) != 43 {
				t.Errorf("authorization request %s = %q, want 43 base64url characters", k, q.Get(k))
			}
		}
		var state *http.Cookie
		for _, c := range resp.Cookies() {
			if strings.HasPrefix(c.Name, oidcPrefix+"_st_") {
				state = c
			}
		}
		if state == nil || !state.HttpOnly || !state.Secure || state.SameSite != http.SameSiteLaxMode || state.Path != "/oauth2/callback" ||
			strings.TrimPrefix(state.Domain, ".") != "ops.example.com" || state.MaxAge != 600 {
			t.Errorf("login state cookie %v", state)
		}

		hops := b.follow(loc.String(), "alice")
		last := hops[len(hops)-1]
		if last.resp.StatusCode != http.StatusOK || last.url != start {
			t.Fatalf("the dance ended at %s with %d %s: %s", last.url, last.resp.StatusCode, last.body, chain(hops))
		}
		var callback *hop
		for i := range hops {
			if strings.HasPrefix(hops[i].url, base+"/oauth2/callback?") {
				callback = &hops[i]
			}
		}
		if callback == nil || callback.resp.StatusCode != http.StatusFound {
			t.Fatalf("no callback on the gateway in %s", chain(hops))
		}
		if got := callback.resp.Header.Get("Location"); got != "/d/abc/my-dashboard?orgId=1&from=now-6h&var-host=a%20b" {
			t.Errorf("callback sends the browser to %q", got)
		}
		chunks := 0
		for _, c := range callback.resp.Cookies() {
			switch {
			case c.Name == state.Name:
				if c.MaxAge >= 0 {
					t.Errorf("the login state cookie is not spent: %v", c)
				}
			case strings.HasPrefix(c.Name, oidcPrefix+"_") && c.MaxAge >= 0: // (chunks it does not use are cleared)
				chunks++
				if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || strings.TrimPrefix(c.Domain, ".") != "ops.example.com" ||
					c.Path != "/" || c.MaxAge <= 0 {
					t.Errorf("session cookie %v: want HttpOnly, Secure, SameSite=Lax, Domain=ops.example.com, Path=/", c)
				}
			}
		}
		if chunks == 0 {
			t.Fatal("the callback set no session cookie")
		}
		ec := echoOf(t, last.resp, last.body)
		if ec.Path != "/d/abc/my-dashboard?orgId=1&from=now-6h&var-host=a%20b" {
			t.Errorf("the app got %q", ec.Path)
		}
		if got := header(ec, "X-Webauth-User"); got != "alice@example.com" {
			t.Errorf("x-webauth-user %q, want alice@example.com", got)
		}
		if got := header(ec, "Cookie"); got != "grafana_theme=dark" {
			t.Errorf("the app got Cookie %q: want only its own cookie, never the session's", got)
		}
		if got := header(ec, "Authorization"); got != "" {
			t.Errorf("the app got Authorization %q (forwardAccessToken is false)", got)
		}
		if n := w.idp.CodeGrants.Load() - grants; n != 1 {
			t.Errorf("%d code grants, want 1", n)
		}

		// With the session: no login, and a client's own x-webauth-user never reaches the app.
		resp, body := b.do(http.MethodGet, base+"/api/search?query=x", "X-Webauth-User", "admin@example.com", "Accept", "application/json")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("with a session: %d %s", resp.StatusCode, body)
		}
		if ec := echoOf(t, resp, body); header(ec, "X-Webauth-User") != "alice@example.com" || strings.Contains(header(ec, "Cookie"), oidcPrefix) {
			t.Errorf("the app got x-webauth-user %q, Cookie %q", header(ec, "X-Webauth-User"), header(ec, "Cookie"))
		}
		if n := w.idp.CodeGrants.Load() - grants; n != 1 {
			t.Errorf("%d code grants after a second request, want 1", n)
		}
	})

	t.Run("staff-only allows hd=example.com and denies others", func(t *testing.T) {
		before := w.appHits.Load()
		b := w.browser(t)
		hops := b.follow(base+"/d/home", "mallory")
		last := hops[len(hops)-1]
		if last.resp.StatusCode != http.StatusForbidden || last.url != base+"/d/home" {
			t.Fatalf("a user without hd=example.com: %d at %s, want 403: %s", last.resp.StatusCode, last.url, chain(hops))
		}
		if len(b.sessionChunks(base)) == 0 {
			t.Error("mallory has no session: the 403 must come from the rule, not the login")
		}
		if resp, _ := b.xhr(base + "/api/dashboards"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("mallory's script request: %d, want 403", resp.StatusCode)
		}
		if n := w.appHits.Load() - before; n != 0 {
			t.Errorf("the app saw %d of mallory's requests", n)
		}
		if ec := w.browser(t).login(base+"/d/home", "alice"); header(ec, "X-Webauth-User") != "alice@example.com" {
			t.Errorf("alice: %v", ec.Headers)
		}
	})

	t.Run("74 no open redirect", func(t *testing.T) {
		// Encoded slashes and backslashes never get as far as a login: the gateway refuses
		// such paths (pathnorm's default).
		for _, p := range []string{"/%2F%2Fevil.com", "/%5Cevil.com", "/%2Fevil.com/x", "/\\evil.com"} {
			if resp, body := w.browser(t).get(base + p); resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("%s: %d to %q %s, want 400", p, resp.StatusCode, resp.Header.Get("Location"), body)
			}
		}
		for _, p := range []string{"//evil.com/x", "///evil.com/", "//evil.com/%2E%2E/x", "/.//evil.com"} {
			b := w.browser(t)
			hops := b.follow(base+p, "alice") // the browser's dialer refuses any host but ours
			last := hops[len(hops)-1]
			if last.resp.StatusCode != http.StatusOK || !strings.HasPrefix(last.url, base+"/") {
				t.Errorf("login from %s: %d at %s: %s", p, last.resp.StatusCode, last.url, chain(hops))
				continue
			}
			for _, h := range hops {
				if l := h.resp.Header.Get("Location"); strings.HasPrefix(h.url, base+"/oauth2/callback") &&
					(!strings.HasPrefix(l, "/") || strings.HasPrefix(l, "//") || strings.HasPrefix(l, "/\\")) {
					t.Errorf("login from %s: the callback sends the browser to %q", p, l)
				}
			}
		}
	})

	t.Run("75 mismatched state", func(t *testing.T) {
		// The attacker runs a login up to the callback with their own code and state.
		attacker := w.browser(t)
		resp, _ := attacker.get(base + "/")
		var cb string
		for _, h := range attacker.follow(resp.Header.Get("Location"), "mallory") {
			if strings.HasPrefix(h.url, base+"/oauth2/callback?") {
				cb = h.url
				break
			}
		}
		if cb == "" {
			t.Fatal("no callback in the attacker's login")
		}
		victim := w.browser(t)
		victim.get(base + "/") // a login of the victim's own in flight
		for name, u := range map[string]string{
			"foreign state": cb,
			"random state":  base + "/oauth2/callback?code=abc&state=" + strings.Repeat("A", 43),
			"no state":      base + "/oauth2/callback?code=abc",
		} {
			resp, _ := victim.get(u)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: %d, want 400", name, resp.StatusCode)
			}
			for _, c := range resp.Cookies() {
				if strings.HasPrefix(c.Name, oidcPrefix+"_") && !strings.HasPrefix(c.Name, oidcPrefix+"_st_") {
					t.Errorf("%s: session cookie %s set", name, c.Name)
				}
			}
		}
		if resp, _ := victim.xhr(base + "/"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the victim has a session after the refused callbacks: %d", resp.StatusCode)
		}
	})

	t.Run("78 scripts get 401, navigations 302", func(t *testing.T) {
		b := w.browser(t)
		for _, c := range []struct {
			method string
			hdr    []string
			want   int
		}{
			{"GET", []string{"Accept", "application/json"}, 401},
			{"GET", []string{"Accept", "*/*"}, 401},
			{"GET", []string{"Sec-Fetch-Mode", "cors"}, 401},
			{"GET", []string{"X-Requested-With", "XMLHttpRequest"}, 401},
			{"POST", nil, 401},
			{"GET", []string{"Sec-Fetch-Mode", "navigate"}, 302},
			{"HEAD", nil, 302},
		} {
			resp, _ := b.do(c.method, base+"/api/dashboards/home", c.hdr...)
			if resp.StatusCode != c.want {
				t.Errorf("%s %v: %d, want %d", c.method, c.hdr, resp.StatusCode, c.want)
			}
			if c.want == 401 && (resp.Header.Get("Www-Authenticate") == "" || resp.Header.Get("Location") != "") {
				t.Errorf("%s %v: WWW-Authenticate %q, Location %q", c.method, c.hdr, resp.Header.Get("Www-Authenticate"), resp.Header.Get("Location"))
			}
			if c.want == 302 && !strings.HasPrefix(resp.Header.Get("Location"), googleIssuer+"/authorize?") {
				t.Errorf("%s %v: Location %q", c.method, c.hdr, resp.Header.Get("Location"))
			}
		}
	})

	t.Run("80 logout clears every chunk and ends the session at the provider", func(t *testing.T) {
		b := w.browser(t)
		b.login(base+"/", "bob")
		if n := len(b.sessionChunks(base)); n < 2 {
			t.Fatalf("bob's session takes %d cookies, want several chunks", n)
		}
		ends := w.idp.EndSessions.Load()
		resp, _ := b.get(base + "/logout")
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), googleIssuer+"/end_session?") {
			t.Fatalf("logout: %d to %q, want 302 to the provider's end_session endpoint", resp.StatusCode, resp.Header.Get("Location"))
		}
		if q := loc.Query(); q.Get("client_id") != grafanaClientID || q.Get("post_logout_redirect_uri") != base+"/" || q.Get("id_token_hint") == "" {
			t.Errorf("end_session request %v", q)
		}
		cleared := map[string]bool{}
		for _, c := range resp.Cookies() {
			if c.MaxAge < 0 && strings.TrimPrefix(c.Domain, ".") == "ops.example.com" {
				cleared[c.Name] = true
			}
		}
		for i := range oidc.MaxChunks {
			if name := fmt.Sprintf("%s_%d", oidcPrefix, i); !cleared[name] {
				t.Errorf("logout does not clear %s (domain ops.example.com)", name)
			}
		}
		if left := b.sessionChunks(base); len(left) != 0 {
			t.Errorf("session cookies left in the browser: %v", left)
		}
		// The provider ends its session and sends the browser back to postLogoutRedirectURL,
		// which is behind the login again.
		hops := b.follow(loc.String(), "")
		if w.idp.EndSessions.Load()-ends != 1 {
			t.Error("the provider's end_session endpoint was not called")
		}
		if len(hops) < 2 || hops[1].url != base+"/" {
			t.Errorf("after end_session: %s, want back to %s/", chain(hops), base)
		}
		if resp, _ := b.xhr(base + "/api/user"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("after logout: %d, want 401", resp.StatusCode)
		}
	})

	t.Run("77 a route of the user's on the callback path", func(t *testing.T) {
		e.Apply(fmt.Sprintf(`apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: callback-squatter}
spec:
  parentRefs: [{name: default}]
  hostnames: [ops.example.com]
  rules:
  - matches: [{path: {type: Exact, value: /oauth2/callback}}, {path: {type: Exact, value: /squatter-probe}}]
    backendRefs: [{group: core.apoxy.dev, kind: Backend, name: grafana, port: %s}]
`, portOf(w.app)))
		b := w.browser(t)
		e.WaitFor("the squatter route served", func() error {
			if resp, body := b.xhr(base + "/squatter-probe"); resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%d %s", resp.StatusCode, body)
			}
			return nil
		})
		before := w.appHits.Load()
		if resp, body := b.get(base + "/oauth2/callback?code=x&state=y"); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("callback path: %d %s, want the gateway's 400 (not the route's backend)", resp.StatusCode, body)
		}
		if ec := b.login(base+"/d/after-squatter", "alice"); ec.Path != "/d/after-squatter" {
			t.Errorf("landed on %q", ec.Path)
		}
		if n := w.appHits.Load() - before; n != 1 {
			t.Errorf("the app got %d requests, want 1 (the landing)", n)
		}
		e.Delete("gateway.apoxy.dev/v1", "HTTPRoute", "callback-squatter")
	})

	t.Run("76 two routes, two policies, one login", func(t *testing.T) {
		prom := "https://prometheus.ops.example.com:" + portOfAddr(e.TLSAddr)
		w.register(prom)
		e.Apply(fmt.Sprintf(`apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: prometheus}
spec:
  parentRefs: [{name: default}]
  hostnames: [prometheus.ops.example.com]
  rules: [{backendRefs: [{group: core.apoxy.dev, kind: Backend, name: grafana, port: %s}]}]
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: AuthPolicy
metadata: {name: prometheus-login}
spec:
  targetRefs: [{group: gateway.apoxy.dev, kind: HTTPRoute, name: prometheus}]
  oidc:
    provider: {issuer: %s}
    clientID: %s
    clientSecretRef: {name: grafana-oidc}
    scopes: [openid, email, profile]
    logout: {path: /signout}
    cookies: {domain: ops.example.com}
    claimToHeaders: [{claim: sub, header: x-user-id}, {claim: name, header: x-user-name}]
    unauthenticatedAction: Deny
`, portOf(w.app), googleIssuer, grafanaClientID))
		b := w.browser(t)
		e.WaitFor("prometheus-login in force", func() error {
			if resp, body := b.get(prom + "/graph"); resp.StatusCode != http.StatusUnauthorized {
				return fmt.Errorf("%d %s", resp.StatusCode, body)
			}
			return nil
		})
		grants := w.idp.CodeGrants.Load()
		b.login(base+"/d/one", "alice")
		resp, body := b.get(prom + "/graph?g0.expr=up")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("the second policy after one login: %d %s", resp.StatusCode, body)
		}
		if ec := echoOf(t, resp, body); header(ec, "X-User-Id") != "alice-id" || !strings.HasPrefix(ec.Host, "prometheus.ops.example.com:") {
			t.Errorf("the second route's app got x-user-id %q on %s", header(ec, "X-User-Id"), ec.Host)
		}
		if n := w.idp.CodeGrants.Load() - grants; n != 1 {
			t.Errorf("%d logins for two policies, want 1", n)
		}
		// And the other way round: a login through the second policy serves the first.
		b2 := w.browser(t)
		b2.get(prom + "/graph") // Deny: no login from here
		if hops := b2.follow(base+"/d/two", "alice"); hops[len(hops)-1].resp.StatusCode != http.StatusOK {
			t.Fatalf("login: %s", chain(hops))
		}
		if resp, _ := b2.xhr(prom + "/api/v1/query"); resp.StatusCode != http.StatusOK {
			t.Errorf("second policy, second browser: %d", resp.StatusCode)
		}
	})

	// The reports route serves only /r: the callback (and logout) paths, outside it, are the
	// gateway's on its host all the same.
	t.Run("79 refresh, and refresh failure sends to login", func(t *testing.T) {
		reports := "https://reports.example.com:" + portOfAddr(e.TLSAddr)
		w.register(reports)
		e.Apply(fmt.Sprintf(`apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: reports}
spec:
  parentRefs: [{name: default}]
  hostnames: [reports.example.com]
  rules: [{matches: [{path: {type: PathPrefix, value: /r}}], backendRefs: [{group: core.apoxy.dev, kind: Backend, name: grafana, port: %s}]}]
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: AuthPolicy
metadata: {name: reports-login}
spec:
  targetRefs: [{group: gateway.apoxy.dev, kind: HTTPRoute, name: reports}]
  oidc:
    provider: {issuer: %s}
    clientID: %s
    clientSecretRef: {name: grafana-oidc}
    scopes: [openid, email, offline_access]
    claimToHeaders: [{claim: email, header: x-webauth-user}]
`, portOf(w.app), googleIssuer, grafanaClientID))
		b := w.browser(t)
		e.WaitFor("reports-login in force", func() error {
			if resp, body := b.xhr(reports + "/r/0"); resp.StatusCode != http.StatusUnauthorized {
				return fmt.Errorf("%d %s", resp.StatusCode, body)
			}
			return nil
		})
		// Access tokens for 65 s: the gateway refreshes them once they are within a minute
		// of expiring (oidc.RefreshMargin), 5 s after the login.
		w.idp.SetAccessTTL(65 * time.Second)
		t.Cleanup(func() { w.idp.SetAccessTTL(time.Hour) })
		refreshes := w.idp.RefreshGrants.Load()
		loggedIn := time.Now()
		b.login(reports+"/r/1", "alice")
		// The refreshed tokens live 50 s: the next request after the refresh refreshes again.
		w.idp.SetAccessTTL(50 * time.Second)
		before := b.sessionChunks(reports)
		if resp, body := b.xhr(reports + "/r/2"); resp.StatusCode != http.StatusOK {
			t.Fatalf("right after the login: %d %s", resp.StatusCode, body)
		} else if time.Since(loggedIn) < 4*time.Second && (len(resp.Cookies()) != 0 || w.idp.RefreshGrants.Load() != refreshes) {
			t.Errorf("refreshed fresh tokens")
		}
		time.Sleep(time.Until(loggedIn.Add(5500 * time.Millisecond)))
		resp, body := b.xhr(reports + "/r/3")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("near expiry: %d %s, want 200 (refreshed transparently)", resp.StatusCode, body)
		}
		if n := w.idp.RefreshGrants.Load() - refreshes; n != 1 {
			t.Errorf("%d refresh grants, want 1", n)
		}
		if ec := echoOf(t, resp, body); header(ec, "X-Webauth-User") != "alice@example.com" || strings.Contains(header(ec, "Cookie"), oidcPrefix) {
			t.Errorf("after the refresh the app got x-webauth-user %q, Cookie %q", header(ec, "X-Webauth-User"), header(ec, "Cookie"))
		}
		if after := b.sessionChunks(reports); len(after) == 0 || fmt.Sprint(after) == fmt.Sprint(before) {
			t.Error("the refresh did not re-seal the session cookies")
		}

		// The refresh token revoked: the user logs in again.
		w.idp.RevokeAll()
		resp, _ = b.get(reports + "/r/4")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), googleIssuer+"/authorize?") {
			t.Fatalf("refresh refused: %d to %q, want 302 to the provider", resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp, _ := b.xhr(reports + "/r/4"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("refresh refused, script request: %d, want 401", resp.StatusCode)
		}
		if ec := b.login(reports+"/r/5", "alice"); ec.Path != "/r/5" {
			t.Errorf("login again landed on %q", ec.Path)
		}

		// The provider's token endpoint down while the tokens (50 s, so due for a refresh at
		// once) are still valid: served with them.
		w.idp.FailTokens.Store(true)
		defer w.idp.FailTokens.Store(false)
		if resp, body := b.xhr(reports + "/r/6"); resp.StatusCode != http.StatusOK {
			t.Errorf("refresh failing transiently with valid tokens: %d %s, want 200", resp.StatusCode, body)
		}
		// Logout, like the callback, is served outside the route's /r.
		if resp, _ := b.get(reports + "/logout"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), googleIssuer+"/end_session?") {
			t.Errorf("logout: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp, _ := b.xhr(reports + "/r/7"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("after logout: %d, want 401", resp.StatusCode)
		}
	})

	t.Run("84 passThroughBearer", func(t *testing.T) {
		api := "https://api.example.com:" + portOfAddr(e.TLSAddr)
		w.register(api)
		ci := newIssuer(t, "https://ci.example.com/", "ci1")
		jwks, _ := json.Marshal(string(ci.jwks()))
		e.Apply(fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: ci-jwks}
type: Opaque
stringData: {jwks: %s}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: api}
spec:
  parentRefs: [{name: default}]
  hostnames: [api.example.com]
  rules: [{backendRefs: [{group: core.apoxy.dev, kind: Backend, name: grafana, port: %s}]}]
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: AuthPolicy
metadata: {name: api-login}
spec:
  targetRefs: [{group: gateway.apoxy.dev, kind: HTTPRoute, name: api}]
  jwt:
    providers:
    - name: ci
      issuer: https://ci.example.com/
      audiences: [grafana-api]
      jwks: {local: {secretRef: {name: ci-jwks}}}
      claimToHeaders: [{claim: sub, header: x-ci-sub}]
  oidc:
    provider: {issuer: %s}
    clientID: %s
    clientSecretRef: {name: grafana-oidc}
    scopes: [openid, email]
    claimToHeaders: [{claim: email, header: x-webauth-user}]
    passThroughBearer: true
`, jwks, portOf(w.app), googleIssuer, grafanaClientID))
		good := ci.token(t, map[string]any{"sub": "deploy-bot", "aud": "grafana-api"})
		b := w.browser(t)
		e.WaitFor("api-login in force", func() error {
			if resp, _ := b.xhr(api + "/api/annotations"); resp.StatusCode != http.StatusUnauthorized {
				return fmt.Errorf("no bearer, no session: %d", resp.StatusCode)
			}
			if resp, body := b.do("GET", api+"/api/annotations", "Authorization", "Bearer "+good); resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%d %s", resp.StatusCode, body)
			}
			return nil
		})
		resp, body := b.do("GET", api+"/api/annotations", "Authorization", "Bearer "+good, "X-Webauth-User", "admin@example.com")
		if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 0 {
			t.Fatalf("valid bearer, navigation: %d with %d cookies, want 200 without a login", resp.StatusCode, len(resp.Cookies()))
		}
		if ec := echoOf(t, resp, body); header(ec, "X-Ci-Sub") != "deploy-bot" || header(ec, "X-Webauth-User") != "" {
			t.Errorf("bearer request: the app got x-ci-sub %q, x-webauth-user %q", header(ec, "X-Ci-Sub"), header(ec, "X-Webauth-User"))
		}
		for name, tok := range map[string]string{
			"garbage":        "not.a.token",
			"foreign key":    newIssuer(t, "https://ci.example.com/", "ci1").token(t, map[string]any{"sub": "x", "aud": "grafana-api"}),
			"wrong aud":      ci.token(t, map[string]any{"sub": "x", "aud": "other"}),
			"expired":        ci.token(t, map[string]any{"sub": "x", "aud": "grafana-api", "exp": time.Now().Add(-time.Hour).Unix()}),
			"unknown issuer": newIssuer(t, "https://evil.example/", "e1").token(t, map[string]any{"sub": "x", "aud": "grafana-api"}),
		} {
			resp, _ := b.do("GET", api+"/d/x", "Authorization", "Bearer "+tok)
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" ||
				!strings.Contains(resp.Header.Get("Www-Authenticate"), `error="invalid_token"`) {
				t.Errorf("%s bearer, navigation: %d Location %q WWW-Authenticate %q, want 401 invalid_token, not a redirect",
					name, resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Www-Authenticate"))
			}
		}
		// Without a bearer: the OIDC login.
		resp, _ = b.get(api + "/d/x")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), googleIssuer+"/authorize?") {
			t.Fatalf("no bearer: %d to %q, want the login", resp.StatusCode, resp.Header.Get("Location"))
		}
		if ec := b.login(api+"/d/x", "alice"); header(ec, "X-Webauth-User") != "alice@example.com" || header(ec, "X-Ci-Sub") != "" {
			t.Errorf("browser: the app got x-webauth-user %q, x-ci-sub %q", header(ec, "X-Webauth-User"), header(ec, "X-Ci-Sub"))
		}
	})

	t.Run("healthy", func(t *testing.T) {
		e.WaitFor("grafana-login Healthy", func() error {
			if st, reason, msg := kindCondition(e, "AuthPolicy", "grafana-login", "Healthy"); st != "True" || reason != "Healthy" {
				return fmt.Errorf("Healthy %s %s %q", st, reason, msg)
			}
			return nil
		})
	})

	t.Run("OIDCDiscoveryFailed", func(t *testing.T) {
		down := "https://wiki.example.com:" + portOfAddr(e.TLSAddr)
		e.Hosts.Set("sso.down.example.com", "127.0.0.79") // nothing listens there
		e.Apply(fmt.Sprintf(`apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: wiki}
spec:
  parentRefs: [{name: default}]
  hostnames: [wiki.example.com]
  rules: [{backendRefs: [{group: core.apoxy.dev, kind: Backend, name: grafana, port: %s}]}]
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: AuthPolicy
metadata: {name: wiki-login}
spec:
  targetRefs: [{group: gateway.apoxy.dev, kind: HTTPRoute, name: wiki}]
  oidc:
    provider: {issuer: https://sso.down.example.com}
    clientID: wiki
    clientSecretRef: {name: grafana-oidc}
`, portOf(w.app)))
		b := w.browser(t)
		e.WaitFor("OIDCDiscoveryFailed", func() error {
			if resp, body := b.get(down + "/"); resp.StatusCode != http.StatusServiceUnavailable {
				return fmt.Errorf("navigation: %d %s, want 503", resp.StatusCode, body)
			}
			if st, reason, msg := kindCondition(e, "AuthPolicy", "wiki-login", "Healthy"); st != "False" || reason != "OIDCDiscoveryFailed" {
				return fmt.Errorf("Healthy %s %s %q", st, reason, msg)
			}
			return nil
		})
		for _, typ := range []string{"Accepted", "ResolvedRefs"} {
			if st, _, msg := kindCondition(e, "AuthPolicy", "wiki-login", typ); st != "True" {
				t.Errorf("%s %s %q", typ, st, msg)
			}
		}
		if st, _, _ := kindCondition(e, "AuthPolicy", "grafana-login", "Healthy"); st != "True" {
			t.Errorf("grafana-login Healthy %s: another policy's provider is down", st)
		}
	})
}

// portOfAddr is the port of a host:port.
func portOfAddr(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// Case 82: two gateway processes with the same server secret (the data directory's
// oidc-session.key) honour each other's logins; one with another secret does not.
func TestOIDCTwoReplicas(t *testing.T) {
	w := newOIDCWorld(t, "127.0.0.75", "127.0.0.76")
	secret := make([]byte, 32)
	rand.Read(secret)
	_, baseA := w.gateway(t, secret)
	_, baseB := w.gateway(t, secret)
	_, baseC := w.gateway(t, nil)
	b := w.browser(t)
	grants := w.idp.CodeGrants.Load()
	if ec := b.login(baseA+"/d/from-a", "alice"); ec.Path != "/d/from-a" {
		t.Fatalf("login on A landed on %q", ec.Path)
	}
	resp, body := b.get(baseB + "/d/on-b?orgId=2")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("replica B with A's session: %d %s", resp.StatusCode, body)
	}
	if ec := echoOf(t, resp, body); header(ec, "X-Webauth-User") != "alice@example.com" || ec.Path != "/d/on-b?orgId=2" {
		t.Errorf("replica B's app got x-webauth-user %q at %q", header(ec, "X-Webauth-User"), ec.Path)
	}
	if n := w.idp.CodeGrants.Load() - grants; n != 1 {
		t.Errorf("%d logins, want 1", n)
	}
	if resp, _ := b.xhr(baseC + "/api/user"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a gateway with another secret: %d, want 401", resp.StatusCode)
	}
}
