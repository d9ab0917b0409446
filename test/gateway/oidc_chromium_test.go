package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/browsertest"
	"github.com/chromedp/chromedp"
)

// headlessChromium starts a headless Chromium for the test whose name resolution sends
// accounts.google.com to idpIP and every *.example.com name to the gateway's loopback
// listeners (keeping the URL's port). It skips the test when no Chromium is installed, unless
// APOXY_REQUIRE_CHROMIUM=1 (as CI sets), which makes that a failure.
func headlessChromium(t *testing.T, idpIP string) context.Context {
	t.Helper()
	return browsertest.Chromium(t, 2*time.Minute,
		chromedp.Flag("host-resolver-rules", fmt.Sprintf("MAP accounts.google.com %s, MAP *.example.com 127.0.0.1", idpIP)))
}

// pageWait evaluates the JavaScript expression expr in the page until it is true, for up to
// 20 s. Navigations under way (redirects, form posts) make evaluations fail: those are retried.
func pageWait(ctx context.Context, expr string) error {
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

// pageState describes where the page is and what it shows, for failure messages.
func pageState(ctx context.Context) string {
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return fmt.Sprintf("at %s showing %.300q", loc, body)
}

// A real browser through the gateway (design §4.4 as published): the navigation to a
// dashboard goes to the provider, the user signs in on its form, and lands back on the
// dashboard with path and query; the app sees x-webauth-user, never the session cookies,
// which the page's scripts cannot read; a script's request is served with the session; logout
// ends the session at the provider and the next navigation asks for a login again.
func TestOIDCChromiumLogin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	const idpIP = "127.0.0.77"
	ctx := headlessChromium(t, idpIP)
	w := newOIDCWorld(t, idpIP, "127.0.0.78")
	_, base := w.gateway(t, nil)

	start := base + "/d/home?orgId=1&kiosk=tv"
	if err := chromedp.Do(ctx, chromedp.Navigate(start)); err != nil {
		t.Fatal(err)
	}
	if err := pageWait(ctx, `location.hostname === "accounts.google.com" && document.getElementById("signin") !== null`); err != nil {
		t.Fatalf("no login form at the provider (%s): %v", pageState(ctx), err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SetValue("#username", "alice"),
		chromedp.Click("#signin"),
	); err != nil {
		t.Fatal(err)
	}
	if err := pageWait(ctx, `location.hostname === "ops.example.com" && document.body !== null && document.body.innerText.includes("alice@example.com")`); err != nil {
		t.Fatalf("did not land on the app (%s): %v", pageState(ctx), err)
	}
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || loc != start {
		t.Errorf("landed on %q (%v), want %s", loc, err, start)
	}
	body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	var ec echo
	if err := json.Unmarshal([]byte(body), &ec); err != nil {
		t.Fatalf("the app's answer %q: %v", body, err)
	}
	if ec.Path != "/d/home?orgId=1&kiosk=tv" || header(ec, "X-Webauth-User") != "alice@example.com" || strings.Contains(header(ec, "Cookie"), oidcPrefix) {
		t.Errorf("the app got %s with x-webauth-user %q, Cookie %q", ec.Path, header(ec, "X-Webauth-User"), header(ec, "Cookie"))
	}
	if c, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`)); strings.Contains(c, oidcPrefix) {
		t.Errorf("the page's scripts can read the session cookies: %q", c)
	}
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/api/user", {headers: {"Accept": "application/json"}}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusOK {
		t.Errorf("the page's script request: %d (%v), want 200", status, err)
	}
	if n := w.idp.CodeGrants.Load(); n != 1 {
		t.Errorf("%d code grants, want 1", n)
	}

	// Logout: through the provider's end_session back to "/", which asks for a login again.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/logout")); err != nil {
		t.Fatal(err)
	}
	if err := pageWait(ctx, `location.hostname === "accounts.google.com" && document.getElementById("signin") !== null`); err != nil {
		t.Fatalf("after logout (%s): %v", pageState(ctx), err)
	}
	if n := w.idp.EndSessions.Load(); n != 1 {
		t.Errorf("end_session called %d times, want 1", n)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(start)); err != nil {
		t.Fatal(err)
	}
	if err := pageWait(ctx, `location.hostname === "accounts.google.com" && document.getElementById("signin") !== null`); err != nil {
		t.Fatalf("a navigation after logout is not sent to the login (%s): %v", pageState(ctx), err)
	}
}
