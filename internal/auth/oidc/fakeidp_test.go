package oidc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// fakeIdP is a hand-written provider whose token endpoint answers whatever the test sets,
// for the checks a conforming OP never gives a reason to make.
type fakeIdP struct {
	srv    *httptest.Server
	issuer string
	key    *ecdsa.PrivateKey

	mu sync.Mutex
	// authMethods is token_endpoint_auth_methods_supported (nil: absent).
	authMethods []string
	// answer makes the token response from the form and the Authorization header.
	answer func(form url.Values, authz string) (int, any)
	// lastForm and lastAuthz are what the token endpoint last received.
	lastForm  url.Values
	lastAuthz string
	// discoveryStatus, when not 0, is the discovery status code.
	discoveryStatus atomic.Int32
	discoveryHits   atomic.Int32
	issuerOverride  string
}

func newFakeIdP(t *testing.T) *fakeIdP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeIdP{key: key}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.issuer = "https://" + f.srv.Listener.Addr().String()
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIdP) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		f.discoveryHits.Add(1)
		if s := f.discoveryStatus.Load(); s != 0 {
			http.Error(w, "nope", int(s))
			return
		}
		f.mu.Lock()
		iss := f.issuer
		if f.issuerOverride != "" {
			iss = f.issuerOverride
		}
		md := map[string]any{
			"issuer":                 iss,
			"authorization_endpoint": f.issuer + "/auth",
			"token_endpoint":         f.issuer + "/token",
			"jwks_uri":               f.issuer + "/jwks",
		}
		if f.authMethods != nil {
			md["token_endpoint_auth_methods_supported"] = f.authMethods
		}
		f.mu.Unlock()
		json.NewEncoder(w).Encode(md)
	case "/jwks":
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.key.PublicKey, KeyID: "k", Algorithm: "ES256", Use: "sig"}}})
	case "/token":
		r.ParseForm()
		f.mu.Lock()
		f.lastForm, f.lastAuthz = r.PostForm, r.Header.Get("Authorization")
		answer := f.answer
		f.mu.Unlock()
		code, body := answer(r.PostForm, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(body)
	default:
		http.NotFound(w, r)
	}
}

// sign makes a compact ES256 JWS of claims.
func (f *fakeIdP) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: f.key}, (&jose.SignerOptions{}).WithHeader("kid", "k"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// idClaims are valid ID token claims for nonce.
func (f *fakeIdP) idClaims(nonce string) map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"iss": f.issuer, "sub": "bob", "aud": testClientID, "exp": now + 3600, "iat": now,
		"nonce": nonce, "email": "bob@example.com",
	}
}

// fakeConfig is a Config for f.
func fakeConfig(f *fakeIdP) Config {
	return Config{
		Issuer:       f.issuer,
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		CookieSecure: true,
		HTTPClient:   tlsClient(),
		Keys:         KeyRing{newKey()},
	}
}

// startLogin has b start a login at app and returns the state and nonce it sent.
func startLogin(t *testing.T, b *browser, app *testApp) (state, nonce string) {
	t.Helper()
	resp, _ := b.get(app.url + "/start?x=1")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return loc.Query().Get("state"), loc.Query().Get("nonce")
}

// The ID token is checked: signature, iss, aud, exp, nonce, azp, sub. Each defect fails the
// login with 401 and sets no session.
func TestIDTokenChecked(t *testing.T) {
	f := newFakeIdP(t)
	app := newTestApp(t, nil, func(string) Config { return fakeConfig(f) })
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cases := map[string]func(c map[string]any) (map[string]any, *ecdsa.PrivateKey){
		"valid":          func(c map[string]any) (map[string]any, *ecdsa.PrivateKey) { return c, nil },
		"wrong nonce":    func(c map[string]any) (map[string]any, *ecdsa.PrivateKey) { c["nonce"] = randomString(); return c, nil },
		"no nonce":       func(c map[string]any) (map[string]any, *ecdsa.PrivateKey) { delete(c, "nonce"); return c, nil },
		"wrong audience": func(c map[string]any) (map[string]any, *ecdsa.PrivateKey) { c["aud"] = "other"; return c, nil },
		"wrong issuer":   func(c map[string]any) (map[string]any, *ecdsa.PrivateKey) { c["iss"] = "https://evil"; return c, nil },
		"expired": func(c map[string]any) (map[string]any, *ecdsa.PrivateKey) {
			c["exp"] = time.Now().Add(-time.Hour).Unix()
			return c, nil
		},
		"no exp":      func(c map[string]any) (map[string]any, *ecdsa.PrivateKey) { delete(c, "exp"); return c, nil },
		"no sub":      func(c map[string]any) (map[string]any, *ecdsa.PrivateKey) { delete(c, "sub"); return c, nil },
		"azp not us":  func(c map[string]any) (map[string]any, *ecdsa.PrivateKey) { c["azp"] = "other"; return c, nil },
		"foreign key": func(c map[string]any) (map[string]any, *ecdsa.PrivateKey) { return c, other },
		"unsigned":    func(c map[string]any) (map[string]any, *ecdsa.PrivateKey) { return c, nil },
		"azp us, 2 aud": func(c map[string]any) (map[string]any, *ecdsa.PrivateKey) {
			c["azp"] = testClientID
			c["aud"] = []string{testClientID, "x"}
			return c, nil
		},
	}
	want := map[string]int{"valid": 302, "azp us, 2 aud": 302}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			b := newBrowser(t)
			state, nonce := startLogin(t, b, app)
			claims, key := mutate(f.idClaims(nonce))
			var tok string
			switch {
			case name == "unsigned":
				p, _ := json.Marshal(claims)
				tok = "eyJhbGciOiJub25lIn0." + b64(p) + "."
			case key != nil:
				save := f.key
				f.key = key
				tok = f.sign(t, claims)
				f.key = save
			default:
				tok = f.sign(t, claims)
			}
			f.mu.Lock()
			f.answer = func(url.Values, string) (int, any) {
				return 200, map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 600, "id_token": tok}
			}
			f.mu.Unlock()
			resp, _ := b.get(app.url + "/oauth2/callback?code=c&state=" + state)
			code := want[name]
			if code == 0 {
				code = 401
			}
			if resp.StatusCode != code {
				t.Fatalf("%d, want %d", resp.StatusCode, code)
			}
			if code == 302 && resp.Header.Get("Location") != "/start?x=1" {
				t.Errorf("Location %q", resp.Header.Get("Location"))
			}
			session := false
			for _, c := range resp.Cookies() {
				if c.Name == app.rp.jar.chunkName(0) && c.MaxAge > 0 {
					session = true
				}
			}
			if session != (code == 302) {
				t.Errorf("session cookie set: %v", session)
			}
		})
	}
}

func b64(p []byte) string {
	return strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(stdB64(p)), "=")
}

// The token request carries the code, the PKCE verifier matching the challenge and the
// redirect_uri, authenticated with client_secret_basic (form-encoded credentials), or with
// client_secret_post when the provider lists only that.
func TestTokenRequestAuthentication(t *testing.T) {
	for _, methods := range [][]string{nil, {"client_secret_basic", "client_secret_post"}, {"client_secret_post"}} {
		t.Run(strings.Join(methods, ","), func(t *testing.T) {
			f := newFakeIdP(t)
			f.authMethods = methods
			app := newTestApp(t, nil, func(string) Config { return fakeConfig(f) })
			b := newBrowser(t)
			resp, _ := b.get(app.url + "/")
			loc, _ := url.Parse(resp.Header.Get("Location"))
			state, nonce, challenge := loc.Query().Get("state"), loc.Query().Get("nonce"), loc.Query().Get("code_challenge")
			tok := f.sign(t, f.idClaims(nonce))
			f.answer = func(url.Values, string) (int, any) {
				return 200, map[string]any{"access_token": "at", "token_type": "bearer", "expires_in": "600", "id_token": tok}
			}
			resp, _ = b.get(app.url + "/oauth2/callback?code=the-code&state=" + state)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("callback: %d", resp.StatusCode)
			}
			form := f.lastForm
			if form.Get("grant_type") != "authorization_code" || form.Get("code") != "the-code" ||
				form.Get("redirect_uri") != app.url+"/oauth2/callback" {
				t.Errorf("form %v", form)
			}
			st := &loginState{Verifier: form.Get("code_verifier")}
			if st.challenge() != challenge {
				t.Errorf("code_verifier does not match the challenge")
			}
			post := len(methods) == 1
			if post {
				if form.Get("client_id") != testClientID || form.Get("client_secret") != testClientSecret || f.lastAuthz != "" {
					t.Errorf("client_secret_post: form %v, Authorization %q", form, f.lastAuthz)
				}
			} else {
				req := &http.Request{Header: http.Header{"Authorization": {f.lastAuthz}}}
				id, secret, ok := req.BasicAuth()
				id, _ = url.QueryUnescape(id)
				secret, _ = url.QueryUnescape(secret)
				if !ok || id != testClientID || secret != testClientSecret || form.Get("client_secret") != "" {
					t.Errorf("client_secret_basic: %q %q %v, form %v", id, secret, ok, form)
				}
			}
		})
	}
}

// Provider failures at the callback: a refused code is 400, an unreachable or failing token
// endpoint 502, an error from the authorization endpoint 401.
func TestCallbackProviderErrors(t *testing.T) {
	f := newFakeIdP(t)
	app := newTestApp(t, nil, func(string) Config { return fakeConfig(f) })
	cases := []struct {
		name   string
		status int
		body   any
		query  string
		want   int
	}{
		{"invalid_grant", 400, map[string]any{"error": "invalid_grant"}, "", 400},
		{"server error", 500, map[string]any{}, "", 502},
		{"not json", 200, "hello", "", 502},
		{"no id_token", 200, map[string]any{"access_token": "at", "token_type": "Bearer"}, "", 502},
		{"not bearer", 200, map[string]any{"access_token": "at", "token_type": "mac", "id_token": "x"}, "", 502},
		{"access_denied", 200, nil, "&error=access_denied", 401},
		{"no code", 200, nil, "&nocode=1", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBrowser(t)
			state, _ := startLogin(t, b, app)
			f.mu.Lock()
			f.answer = func(url.Values, string) (int, any) { return c.status, c.body }
			f.mu.Unlock()
			q := "code=c&state=" + state + c.query
			if c.query == "&nocode=1" {
				q = "state=" + state
			}
			resp, _ := b.get(app.url + "/oauth2/callback?" + q)
			if resp.StatusCode != c.want {
				t.Fatalf("%d, want %d", resp.StatusCode, c.want)
			}
			// The state is spent whatever the outcome.
			resp, _ = b.get(app.url + "/oauth2/callback?code=c&state=" + state)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("state replay: %d, want 400", resp.StatusCode)
			}
		})
	}
}

// Discovery: lazy, once, checked against the issuer, retried with backoff; Health reports.
func TestDiscovery(t *testing.T) {
	f := newFakeIdP(t)
	clock := &testClock{}
	app := newTestApp(t, nil, func(string) Config {
		c := fakeConfig(f)
		c.Now = clock.Now
		return c
	})
	if f.discoveryHits.Load() != 0 || app.rp.Health() != nil {
		t.Fatal("discovery before first use")
	}
	f.discoveryStatus.Store(500)
	b := newBrowser(t)
	if resp, _ := b.get(app.url + "/"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("discovery down: %d, want 503", resp.StatusCode)
	}
	if app.rp.Health() == nil {
		t.Error("Health is nil with discovery failing")
	}
	f.discoveryStatus.Store(0)
	// Within the backoff the error is served without asking again.
	if resp, _ := b.get(app.url + "/"); resp.StatusCode != http.StatusServiceUnavailable || f.discoveryHits.Load() != 1 {
		t.Fatalf("within backoff: %d after %d fetches", resp.StatusCode, f.discoveryHits.Load())
	}
	clock.Advance(2 * time.Second)
	for range 5 {
		if resp, _ := b.get(app.url + "/"); resp.StatusCode != http.StatusFound {
			t.Fatalf("after backoff: %d, want 302", resp.StatusCode)
		}
	}
	if n := f.discoveryHits.Load(); n != 2 {
		t.Errorf("%d discovery fetches, want 2", n)
	}
	if err := app.rp.Health(); err != nil {
		t.Errorf("Health: %v", err)
	}

	// A document for another issuer is refused.
	g := newFakeIdP(t)
	g.issuerOverride = "https://someone-else.example"
	app2 := newTestApp(t, nil, func(string) Config { return fakeConfig(g) })
	if resp, _ := newBrowser(t).get(app2.url + "/"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("issuer mismatch: %d, want 503", resp.StatusCode)
	}
	if err := app2.rp.Health(); err == nil || !strings.Contains(err.Error(), "issuer") {
		t.Errorf("Health: %v", err)
	}
}

// Sessions pass without the provider: only logins need it.
func TestSessionNeedsNoProvider(t *testing.T) {
	o := newTestOP(t, time.Hour, time.Hour)
	app := newTestApp(t, o, func(string) Config { return baseConfig(o, nil) })
	b := newBrowser(t)
	b.login(app.url + "/")
	o.Close()
	if resp, _ := b.get(app.url + "/x"); resp.StatusCode != http.StatusOK {
		t.Fatalf("with the provider gone: %d", resp.StatusCode)
	}
}

func stdB64(p []byte) string { return base64.StdEncoding.EncodeToString(p) }
