package oidc

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func testJar(t *testing.T, keys KeyRing) *cookieJar {
	t.Helper()
	s, err := newSealer(keys)
	if err != nil {
		t.Fatal(err)
	}
	return &cookieJar{prefix: "_apoxy_oidc_0123abcd", secure: true, sameSite: http.SameSiteLaxMode, sealer: s}
}

func sampleSession(idLen, atLen, rtLen int) SessionData {
	tok := func(n int, c string) string { return strings.Repeat(c, n) }
	now := time.Unix(1_800_000_000, 0)
	return SessionData{
		Start: now, Expiry: now.Add(time.Hour),
		IDToken: "h." + tok(max(idLen-4, 1), "i") + ".s", AccessToken: tok(atLen, "a"), RefreshToken: tok(rtLen, "r"),
	}
}

// Sessions of every size up to MaxChunks chunks round-trip, each chunk within ChunkSize and
// each Set-Cookie line within a browser's 4096 bytes.
func TestSessionChunksRoundTrip(t *testing.T) {
	j := testJar(t, KeyRing{newKey()})
	for _, sz := range [][3]int{{10, 0, 0}, {900, 40, 40}, {2500, 1200, 300}, {5000, 5000, 2000}, {9000, 9000, 4000}} {
		d := sampleSession(sz[0], sz[1], sz[2])
		vals, err := j.encodeSession(&d)
		if err != nil {
			t.Fatalf("%v: %v", sz, err)
		}
		for i, c := range j.sessionCookies(vals, 86400) {
			if i < len(vals) {
				if len(c.Value) > ChunkSize || len(c.String()) > 4096 {
					t.Errorf("%v: chunk %d value %d bytes, Set-Cookie %d bytes", sz, i, len(c.Value), len(c.String()))
				}
				if !c.HttpOnly || !c.Secure || c.Path != "/" || c.SameSite != http.SameSiteLaxMode || c.MaxAge != 86400 {
					t.Errorf("chunk attributes %s", c)
				}
			} else if c.MaxAge >= 0 {
				t.Errorf("%v: surplus chunk %d not deleted: %s", sz, i, c)
			}
		}
		got, key, err := j.DecodeSession(vals)
		if err != nil || key != 0 {
			t.Fatalf("%v (%d chunks): %v", sz, len(vals), err)
		}
		if got.IDToken != d.IDToken || got.AccessToken != d.AccessToken || got.RefreshToken != d.RefreshToken ||
			!got.Start.Equal(d.Start) || !got.Expiry.Equal(d.Expiry) {
			t.Fatalf("%v: round trip changed the session", sz)
		}
		if len(vals) > 1 {
			swapped := append([]string{}, vals...)
			swapped[0], swapped[1] = swapped[1], swapped[0]
			if _, _, err := j.DecodeSession(swapped); err == nil {
				t.Errorf("%v: swapped chunks decoded", sz)
			}
			if _, _, err := j.DecodeSession(vals[:len(vals)-1]); err == nil {
				t.Errorf("%v: missing chunk decoded", sz)
			}
			if _, _, err := j.DecodeSession(append(append([]string{}, vals...), "x")); err == nil {
				t.Errorf("%v: surplus chunk decoded", sz)
			}
		}
	}
	d := sampleSession(MaxTokenSize, MaxTokenSize, MaxTokenSize)
	if _, err := j.encodeSession(&d); err == nil {
		t.Error("a session over MaxChunks chunks encoded")
	}
}

// Foreign keys, other prefixes and state cookies never open as a session.
func TestSessionBinding(t *testing.T) {
	k := newKey()
	j := testJar(t, KeyRing{k})
	d := sampleSession(100, 10, 10)
	vals, _ := j.encodeSession(&d)
	other := testJar(t, KeyRing{newKey()})
	if _, _, err := other.DecodeSession(vals); err == nil {
		t.Error("opened under a foreign key")
	}
	renamed := testJar(t, KeyRing{k})
	renamed.prefix = "other"
	if _, _, err := renamed.DecodeSession(vals); err == nil {
		t.Error("opened under another prefix")
	}
	st := newLoginState(time.Now(), "h", "/")
	name, v := j.encodeState(st)
	if _, _, err := j.DecodeSession([]string{"1." + v}); err == nil {
		t.Error("a state cookie opened as a session")
	}
	if _, ok := j.decodeState(name, v, st.State, time.Now()); !ok {
		t.Error("state does not open")
	}
	if _, ok := j.decodeState(j.prefix+"_st_AAAAAAAAAAAAAAAA", v, st.State, time.Now()); ok {
		t.Error("state opened under another name")
	}
	if _, ok := j.decodeState(name, v, randomString(), time.Now()); ok {
		t.Error("state opened for another state value")
	}
	if _, ok := j.decodeState(name, v, st.State, time.Now().Add(StateTTL+time.Second)); ok {
		t.Error("expired state opened")
	}
	// Rotation: the ring [new, k] opens k's cookie and says it was not the newest key.
	rot := testJar(t, KeyRing{newKey(), k})
	if _, key, err := rot.DecodeSession(vals); err != nil || key != 1 {
		t.Errorf("rotated ring: key %d, %v", key, err)
	}
}

func TestUnmarshalSessionRefuses(t *testing.T) {
	d := sampleSession(50, 5, 5)
	good := d.marshal()
	if _, err := unmarshalSession(good); err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{
		"empty":              nil,
		"version":            append([]byte{2}, good[1:]...),
		"trailing":           append(append([]byte{}, good...), 0),
		"truncated":          good[:len(good)-1],
		"no id token":        (&SessionData{Start: d.Start, Expiry: d.Expiry}).marshal(),
		"start after expiry": (&SessionData{Start: d.Expiry, Expiry: d.Start, IDToken: "a.b.c"}).marshal(),
		"zero start":         (&SessionData{Expiry: d.Expiry, IDToken: "a.b.c"}).marshal(),
		"control char":       (&SessionData{Start: d.Start, Expiry: d.Expiry, IDToken: "a.b\n.c"}).marshal(),
		"space":              (&SessionData{Start: d.Start, Expiry: d.Expiry, IDToken: "a.b.c", AccessToken: "x y"}).marshal(),
	}
	for name, b := range bad {
		if _, err := unmarshalSession(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSafeReturnPath(t *testing.T) {
	for in, want := range map[string]string{
		"/":                     "/",
		"/a/b?c=d&e=%2F":        "/a/b?c=d&e=%2F",
		"/%2F%2Fevil.com":       "/%2F%2Fevil.com",
		"":                      "/",
		"//evil.com":            "/",
		"///evil.com":           "/",
		"/\\evil.com":           "/",
		"/a\\b":                 "/",
		"https://evil.com/":     "/",
		"http:evil.com":         "/",
		"javascript:alert(1)":   "/",
		"evil.com":              "/",
		"/\t/evil.com":          "/",
		"/x\r\nSet-Cookie: a=b": "/",
		"/a#frag":               "/",
		"/é":                    "/",
		"/a b":                  "/",
	} {
		if got := safeReturnPath(in); got != want {
			t.Errorf("safeReturnPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDefaultCookieNamePrefix(t *testing.T) {
	a := DefaultCookieNamePrefix("https://idp.example", "c1")
	if len(a) != len(DefaultCookiePrefix)+8 || !strings.HasPrefix(a, DefaultCookiePrefix) {
		t.Fatalf("prefix %q", a)
	}
	if a != DefaultCookieNamePrefix("https://idp.example", "c1") {
		t.Error("not stable")
	}
	if a == DefaultCookieNamePrefix("https://idp.example", "c2") || a == DefaultCookieNamePrefix("https://idp.example/", "c1") {
		t.Error("not distinct")
	}
	// The separator keeps ("ab", "c") and ("a", "bc") apart.
	if DefaultCookieNamePrefix("ab", "c") == DefaultCookieNamePrefix("a", "bc") {
		t.Error("ambiguous")
	}
}

func TestConfigRefused(t *testing.T) {
	good := func() Config {
		return Config{Issuer: "https://idp.example", ClientID: "c", ClientSecret: "s", Keys: KeyRing{newKey()}, CookieSecure: true}
	}
	if _, err := New(good()); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"http issuer":            func(c *Config) { c.Issuer = "http://idp.example" },
		"no issuer":              func(c *Config) { c.Issuer = "" },
		"no client":              func(c *Config) { c.ClientID = "" },
		"no keys":                func(c *Config) { c.Keys = nil },
		"short key":              func(c *Config) { c.Keys = KeyRing{make([]byte, 16)} },
		"bad scope":              func(c *Config) { c.Scopes = []string{"a b"} },
		"relative redirect":      func(c *Config) { c.RedirectURL = "callback" },
		"http redirect":          func(c *Config) { c.RedirectURL = "http://app.example/cb" },
		"root callback":          func(c *Config) { c.RedirectURL = "/" },
		"dotted callback":        func(c *Config) { c.RedirectURL = "/a/../cb" },
		"logout is callback":     func(c *Config) { c.LogoutPath = DefaultRedirectPath },
		"bad post logout":        func(c *Config) { c.PostLogoutRedirectURL = "//evil.com" },
		"bad prefix":             func(c *Config) { c.CookieNamePrefix = "a;b" },
		"__Host- with domain":    func(c *Config) { c.CookieNamePrefix = "__Host-s"; c.CookieDomain = "example.com" },
		"__Host- insecure":       func(c *Config) { c.CookieNamePrefix = "__Host-s"; c.CookieSecure = false },
		"__Secure- insecure":     func(c *Config) { c.CookieNamePrefix = "__Secure-s"; c.CookieSecure = false },
		"bad domain":             func(c *Config) { c.CookieDomain = "exa mple.com" },
		"SameSite None insecure": func(c *Config) { c.CookieSameSite = "None"; c.CookieSecure = false },
		"bad SameSite":           func(c *Config) { c.CookieSameSite = "Sometimes" },
		"tiny timeout":           func(c *Config) { c.AbsoluteTimeout = time.Second },
		"bad action":             func(c *Config) { c.UnauthenticatedAction = "Maybe" },
		"bad endpoint":           func(c *Config) { c.TokenEndpoint = "ftp://idp.example/token" },
		"none alg":               func(c *Config) { c.Algorithms = []string{"none"} },
	} {
		c := good()
		mutate(&c)
		rp, err := New(c)
		if err == nil && name == "none alg" {
			// Algorithms are checked when the provider is first resolved.
			continue
		}
		if err == nil {
			rp.Close()
			t.Errorf("%s: accepted", name)
		}
	}
	c := good()
	c.Scopes = []string{"email", "openid", "email"}
	rp, _ := New(c)
	if rp.cfg.scopes != "openid email" {
		t.Errorf("scopes %q", rp.cfg.scopes)
	}
}

// SameSite=Strict: the session cookies are Strict, the state cookie Lax (it must come back
// on the provider's redirect), and the callback lands with a same-site page instead of a
// redirect (a cross-site redirect chain would not carry the Strict cookies).
func TestStrictSameSite(t *testing.T) {
	o := newTestOP(t, time.Hour, time.Hour)
	app := newTestApp(t, o, func(string) Config {
		c := baseConfig(o, nil)
		c.CookieSameSite = "Strict"
		c.CookieDomain = "127.0.0.1"
		return c
	})
	b := newBrowser(t)
	resp, _ := b.get(app.url + "/deep?a=<b>")
	for _, c := range resp.Cookies() {
		if c.SameSite != http.SameSiteLaxMode {
			t.Errorf("state cookie %s", c)
		}
	}
	resp, body, visited := b.follow(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `http-equiv="refresh"`) {
		t.Fatalf("callback: %d %q via %v", resp.StatusCode, body, visited)
	}
	if !strings.Contains(body, "url=/deep?a=&lt;b&gt;") {
		t.Errorf("page %q does not continue to the original URL", body)
	}
	for _, c := range resp.Cookies() {
		if strings.HasSuffix(c.Name, "_0") && (c.SameSite != http.SameSiteStrictMode || c.Domain != "127.0.0.1") {
			t.Errorf("session cookie %s", c)
		}
	}
}

// An absolute redirectURL on a central host: the login returns to the host it started on
// when the cookie domain covers both, and to "/" on the callback host otherwise.
func TestAbsoluteRedirectURLAcrossHosts(t *testing.T) {
	for _, domain := range []string{"example.test", ""} {
		t.Run("domain="+domain, func(t *testing.T) {
			o := newTestOP(t, time.Hour, time.Hour)
			var port string
			app := newTestApp(t, nil, func(base string) Config {
				u, _ := url.Parse(base)
				port = u.Port()
				c := baseConfig(o, nil)
				c.RedirectURL = "https://auth.example.test:" + port + "/oauth2/callback"
				c.CookieDomain = domain
				return c
			})
			o.AllowRedirect("https://auth.example.test:"+port+"/oauth2/callback", "")
			b := newBrowser(t)
			// Every name resolves to the app, except the provider's own address.
			appAddr := app.srv.Listener.Addr().String()
			b.c.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				if strings.HasSuffix(strings.Split(addr, ":")[0], ".example.test") {
					addr = appAddr
				}
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			}
			start := "https://app.example.test:" + port + "/page?q=1"
			resp, body, visited := b.follow(start)
			if domain == "" {
				// The state cookie is host-only at app.example.test: the callback host
				// cannot see it.
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("without a cookie domain: %d %q via %v", resp.StatusCode, body, visited)
				}
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%d %q via %v", resp.StatusCode, body, visited)
			}
			if last := visited[len(visited)-1]; last != start {
				t.Errorf("landed on %s, want %s", last, start)
			}
		})
	}
}

func TestSameHost(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"app.example.com", "APP.example.com", true},
		{"app.example.com:443", "app.example.com", true},
		{"app.example.com:80", "app.example.com", true},
		{"app.example.com:8443", "app.example.com", false},
		{"app.example.com", "app.example.com.evil", false},
		{"[::1]:443", "[::1]", true},
	} {
		if got := sameHost(c.a, c.b); got != c.want {
			t.Errorf("sameHost(%q, %q) = %v", c.a, c.b, got)
		}
	}
}
