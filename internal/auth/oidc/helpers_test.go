package oidc

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"apoxy.dev/apoxy/internal/auth/oidc/oidctest"
)

// The test provider's client.
const (
	testClientID     = oidctest.DefaultClientID
	testClientSecret = oidctest.DefaultClientSecret
)

// newTestOP starts an in-process OpenID provider (oidctest) on loopback with its own issuer
// URL, logging in oidctest.Alice. accessTTL and idTTL are the tokens' lifetimes.
func newTestOP(t *testing.T, accessTTL, idTTL time.Duration) *oidctest.Provider {
	t.Helper()
	return oidctest.NewProvider(t, oidctest.Options{AccessTTL: accessTTL, IDTokenTTL: idTTL})
}

// newKey returns a random ring key.
func newKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// testClock is an adjustable clock: real time plus an offset the test moves.
type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// tlsClient trusts the httptest certificate (every httptest TLS server uses the same one).
func tlsClient() *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
}

// appEcho is what the test app answers to a forwarded request.
type appEcho struct {
	Path   string         `json:"path"`
	Query  string         `json:"query"`
	Sub    string         `json:"sub"`
	Claims map[string]any `json:"claims"`
	Cookie string         `json:"cookie"`
	Access bool           `json:"access"`
}

// testApp is an httptest TLS server with an RP in front of a tiny app: the RP runs first on
// every request (as the gateway runs it before route matching), then a mux with a route on
// the callback path (a "more specific route" that must not break the callback) and an echo.
type testApp struct {
	srv *httptest.Server
	rp  *RP
	url string
}

// newTestApp starts an app whose RP config is made by mk from the app's base URL.
func newTestApp(t *testing.T, o *oidctest.Provider, mk func(base string) Config) *testApp {
	t.Helper()
	a := &testApp{}
	a.srv = httptest.NewUnstartedServer(nil)
	a.url = "https://" + a.srv.Listener.Addr().String()
	cfg := mk(a.url)
	if cfg.Log.GetSink() == nil {
		cfg.Log = testr.NewWithOptions(t, testr.Options{Verbosity: 1})
	}
	rp, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.rp = rp
	t.Cleanup(rp.Close)
	mux := http.NewServeMux()
	mux.HandleFunc(rp.cfg.callbackPath, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "the app's own route", http.StatusTeapot)
	})
	a.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, handled := rp.Serve(w, r)
		if handled {
			return
		}
		if r.URL.Path == rp.cfg.callbackPath {
			mux.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(appEcho{
			Path: r.URL.Path, Query: r.URL.RawQuery, Sub: s.Subject, Claims: s.Claims,
			Cookie: r.Header.Get("Cookie"), Access: s.AccessToken != "",
		})
	})
	a.srv.StartTLS()
	t.Cleanup(a.srv.Close)
	if o != nil {
		o.AllowRedirect(a.url+rp.cfg.callbackPath, a.url+"/bye")
	}
	return a
}

// baseConfig is a Config for the test OP with a fresh key ring.
func baseConfig(o *oidctest.Provider, clock *testClock) Config {
	c := Config{
		Issuer:        o.Issuer,
		ClientID:      testClientID,
		ClientSecret:  testClientSecret,
		Scopes:        []string{"email", "profile", "offline_access"},
		CookieSecure:  true,
		RefreshTokens: true,
		HTTPClient:    tlsClient(),
		Keys:          KeyRing{newKey()},
	}
	if clock != nil {
		c.Now = clock.Now
	}
	return c
}

// browser is a cookie-keeping client that does not follow redirects, so each step of the
// dance is visible; it sends what a browser navigation sends.
type browser struct {
	t      *testing.T
	c      *http.Client
	jar    *cookiejar.Jar
	header http.Header
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	c := tlsClient()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: t, c: c, jar: jar, header: http.Header{
		"Accept": {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
	}}
}

// do sends a request and returns the response with its body read.
func (b *browser) do(method, u string, hdr http.Header) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func (b *browser) get(u string) (*http.Response, string) { return b.do(http.MethodGet, u, nil) }

// follow GETs u and follows redirects (resolving relative Locations), returning the final
// response and every URL visited.
func (b *browser) follow(u string) (*http.Response, string, []string) {
	b.t.Helper()
	var visited []string
	for range 20 {
		visited = append(visited, u)
		resp, body := b.get(u)
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			return resp, body, visited
		}
		next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			b.t.Fatalf("bad Location %q", resp.Header.Get("Location"))
		}
		u = next.String()
	}
	b.t.Fatalf("too many redirects: %v", visited)
	return nil, "", nil
}

// login runs the whole dance from u and returns the app's echo of the final request.
func (b *browser) login(u string) appEcho {
	b.t.Helper()
	resp, body, visited := b.follow(u)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("login from %s ended with %d %q after %v", u, resp.StatusCode, body, visited)
	}
	return decodeEcho(b.t, body)
}

func decodeEcho(t *testing.T, body string) appEcho {
	t.Helper()
	var e appEcho
	if err := json.NewDecoder(bytes.NewReader([]byte(body))).Decode(&e); err != nil {
		t.Fatalf("app answer %q: %v", body, err)
	}
	return e
}

// cookies returns the jar's cookies for u.
func (b *browser) cookies(u string) []*http.Cookie {
	pu, _ := url.Parse(u)
	return b.jar.Cookies(pu)
}

// cookieNames lists the names of cookies in Set-Cookie headers of resp.
func setCookies(resp *http.Response) map[string]*http.Cookie {
	m := map[string]*http.Cookie{}
	for _, c := range resp.Cookies() {
		m[c.Name] = c
	}
	return m
}

func hasPrefix(s, p string) bool { return strings.HasPrefix(s, p) }
