package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"apoxy.dev/apoxy/internal/auth/oidc/oidctest"
	"apoxy.dev/apoxy/internal/browsertest"
)

// chromium returns a browser context for the test (see browsertest.Chromium).
func chromium(t *testing.T) context.Context {
	t.Helper()
	return browsertest.Chromium(t, 90*time.Second)
}

// browserApp is a tiny app behind the RP for a real browser, on https://localhost:port (a
// different site from the provider on 127.0.0.1, so the provider's redirects are
// cross-site as they are in production). /bye is public; everything else needs a login.
func browserApp(t *testing.T, o *oidctest.Provider, sameSite string) (base string, rp *RP) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	_, port, _ := strings.Cut(srv.Listener.Addr().String(), ":")
	base = "https://localhost:" + port
	c := baseConfig(o, nil)
	c.CookieSameSite = sameSite
	c.PostLogoutRedirectURL = "/bye"
	rp, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rp.Close)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bye" {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html><body>bye</body></html>")
			return
		}
		s, handled := rp.Serve(w, r)
		if handled {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(appEcho{Path: r.URL.Path, Query: r.URL.RawQuery, Sub: s.Subject, Claims: s.Claims})
	})
	srv.StartTLS()
	t.Cleanup(srv.Close)
	o.AllowRedirect(base+"/oauth2/callback", base+"/bye")
	return base, rp
}

// waitFor evaluates expr until it is true, for up to 20 s. A navigation in progress (a
// meta refresh, a redirect) destroys the page's context under an evaluation: such errors
// are retried.
func waitFor(ctx context.Context, expr string) error {
	deadline := time.Now().Add(20 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		var ok bool
		if ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool](expr)); err == nil && ok {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err == nil {
		err = fmt.Errorf("%s stayed false", expr)
	}
	return err
}

// fetchStatus runs fetch(path) in the page (a script's request, same origin, with cookies)
// and returns the status.
func fetchStatus(ctx context.Context, path string) (int, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[int](
		fmt.Sprintf(`fetch(%q, {headers: {"Accept": "application/json"}, redirect: "manual"}).then(r => r.status)`, path),
		chromedp.EvalAwaitPromise))
}

// A real browser through the whole dance, with Lax and with Strict cookies: the navigation
// is sent to the provider and back to the original URL with its query; the page's scripts
// get 401 (not a redirect) without a session and 200 with one, and cannot read the cookies;
// logout ends the session at the provider and lands on postLogoutRedirectURL.
func TestChromiumLoginDance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	for _, sameSite := range []string{"Lax", "Strict"} {
		t.Run(sameSite, func(t *testing.T) {
			ctx := chromium(t)
			o := newTestOP(t, time.Hour, time.Hour)
			base, rp := browserApp(t, o, sameSite)

			if err := chromedp.Do(ctx, chromedp.Navigate(base+"/bye")); err != nil {
				t.Fatal(err)
			}
			if st, err := fetchStatus(ctx, "/api"); err != nil || st != http.StatusUnauthorized {
				t.Fatalf("script request without a session: %d %v, want 401", st, err)
			}

			// The provider's login page is a form: the way back to the app starts from the
			// provider's site, so the redirect chain is cross-site, as in production.
			o.FormLogin.Store(true)
			if err := chromedp.Do(ctx, chromedp.Navigate(base+"/dash/board?tab=a%20b&x=1")); err != nil {
				t.Fatal(err)
			}
			if err := waitFor(ctx, `document.getElementById("signin") !== null`); err != nil {
				loc, _ := chromedp.Run(ctx, chromedp.Location())
				t.Fatalf("no login form at %s: %v", loc, err)
			}
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("signin").click(), true`)); err != nil {
				t.Fatal(err)
			}
			// (With Strict the callback page continues by itself: wait for the app.)
			if err := waitFor(ctx, `location.pathname === "/dash/board" && document.body && document.body.innerText.includes("alice-id")`); err != nil {
				loc, _ := chromedp.Run(ctx, chromedp.Location())
				body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
				t.Fatalf("did not land on the app: at %s showing %q: %v", loc, body, err)
			}
			loc, err := chromedp.Run(ctx, chromedp.Location())
			if err != nil || loc != base+"/dash/board?tab=a%20b&x=1" {
				t.Fatalf("landed on %q (%v)", loc, err)
			}
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			var e appEcho
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Sub != "alice-id" || e.Claims["email"] != "alice@example.com" {
				t.Fatalf("app saw %q (%v)", body, err)
			}
			if st, err := fetchStatus(ctx, "/api"); err != nil || st != http.StatusOK {
				t.Fatalf("script request with a session: %d %v, want 200", st, err)
			}
			if c, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`)); strings.Contains(c, rp.CookieNamePrefix()) {
				t.Errorf("scripts can read the session cookies: %q", c)
			}
			if n := o.CodeGrants.Load(); n != 1 {
				t.Errorf("%d code grants, want 1", n)
			}

			if err := chromedp.Do(ctx, chromedp.Navigate(base+"/logout")); err != nil {
				t.Fatal(err)
			}
			if err := waitFor(ctx, `location.pathname === "/bye"`); err != nil {
				loc, _ := chromedp.Run(ctx, chromedp.Location())
				t.Fatalf("logout ended at %s: %v", loc, err)
			}
			if o.EndSessions.Load() != 1 {
				t.Error("the provider's end_session was not called")
			}
			if st, err := fetchStatus(ctx, "/api"); err != nil || st != http.StatusUnauthorized {
				t.Fatalf("script request after logout: %d %v, want 401", st, err)
			}
		})
	}
}
