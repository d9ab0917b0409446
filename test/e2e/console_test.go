package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"apoxy.dev/apoxy/internal/browsertest"
)

var (
	consoleLinkRE = regexp.MustCompile(`Console\s+(http://\S+)`)
	projectKeyRE  = regexp.MustCompile(`Project key \(default\)\s+(\S+)`)
)

// consoleBrowser is a headless Chromium on `apoxy dev`'s console, saving screenshots.
type consoleBrowser struct {
	t     *testing.T
	ctx   context.Context
	base  string // http://admin-addr
	shots string
}

// shot saves a full-page screenshot of what the browser shows as NAME.png in the screenshot
// directory ($APOXY_SCREENSHOTS, e.g. docs/console, else the test's own directory).
func (b *consoleBrowser) shot(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, t)
		if err != nil {
			return err
		}
		p := filepath.Join(b.shots, name+".png")
		b.t.Logf("screenshot %s", p)
		return os.WriteFile(p, png, 0o644)
	})
}

// run runs the actions, each within 15 s.
func (b *consoleBrowser) run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	for i, a := range actions {
		ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
		err := chromedp.Do(ctx, a)
		cancel()
		if err != nil {
			loc, _ := chromedp.Run(b.ctx, chromedp.Location())
			body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
			b.t.Fatalf("browser step %d of %d: %v\nat %s:\n%s", i+1, len(actions), err, loc, body)
		}
	}
}

// value runs an action that returns a value.
func value[T any](b *consoleBrowser, a chromedp.Action[T]) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return v
}

// waitJS evaluates expr in the page until it is true (10 s).
func (b *consoleBrowser) waitJS(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr)); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			html, _ := chromedp.Run(b.ctx, chromedp.OuterHTML("main"))
			b.t.Fatalf("%s: not within 10s; the page's main:\n%s", what, html)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reloadUntil reloads the page until expr holds, for up to 30 s: for what the page shows as it
// was when loaded (an object's status), not what scripts update.
func (b *consoleBrowser) reloadUntil(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b.run(chromedp.Reload(), chromedp.WaitReady(`body`))
		if ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr)); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			html, _ := chromedp.Run(b.ctx, chromedp.OuterHTML("main"))
			b.t.Fatalf("%s: not within 30s of reloads; the page's main:\n%s", what, html)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitForLong polls cond for up to 60 s (function builds).
func waitForLong(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestConsole drives the web console in headless Chromium against a real `apoxy dev`: sign in
// with the link dev prints, see the default Gateway Programmed, apply a Backend and a route
// through the YAML editor and see the route served, see validation errors at their field's
// line, see the charts move under load, explain a URL, tail the access log, roll an
// EdgeFunction back to its older revision, reach every field by keyboard with a label, and sign
// in with a project key that keeps to its project. Every page is screenshotted.
func TestConsole(t *testing.T) {
	d := startDev(t, "")
	m := consoleLinkRE.FindStringSubmatch(d.log.String())
	k := projectKeyRE.FindStringSubmatch(d.log.String())
	if m == nil || k == nil {
		t.Fatalf("apoxy dev printed no console link or project key:\n%s", d.log)
	}
	link, projectKey := m[1], k[1]
	shots := os.Getenv("APOXY_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	b := &consoleBrowser{t: t, base: "http://" + d.adminAddr, shots: shots,
		ctx: browsertest.Chromium(t, 3*time.Minute, chromedp.WindowSize(1280, 860))}
	p := b.base + "/console/p/default"

	// Signed in by the link, the admin sees the projects, then the default project's overview.
	b.run(chromedp.Navigate(link), chromedp.WaitVisible(`a[href="/console/p/default/"]`), b.shot("projects"),
		chromedp.Click(`a[href="/console/p/default/"]`), chromedp.WaitVisible(`tr[data-gateway="default/default"]`))
	if state := value(b, chromedp.Text(`tr[data-gateway="default/default"] .state`)); state != "Programmed" {
		t.Errorf("default Gateway state %q, want Programmed", state)
	}
	b.run(b.shot("overview"))

	// A Backend and a route applied through the YAML editor; the route is then served.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "console ok") }))
	t.Cleanup(echo.Close)
	host, port, _ := net.SplitHostPort(echo.Listener.Addr().String())
	backend := fmt.Sprintf("apiVersion: core.apoxy.dev/v1alpha2\nkind: Backend\nmetadata:\n  name: echo\nspec:\n  endpoints:\n  - ip: %s\n", host)
	route := fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: console-route
spec:
  parentRefs:
  - name: default
  hostnames:
  - console.example.com
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: /
    backendRefs:
    - kind: Backend
      group: core.apoxy.dev
      name: echo
      port: %s
`, port)
	for _, obj := range []struct{ yaml, page string }{{backend, "/k/backends/default/echo"}, {route, "/k/httproutes/default/console-route"}} {
		b.run(chromedp.Navigate(p+"/new"), chromedp.WaitVisible(`#yaml`), chromedp.SetValue(`#yaml`, obj.yaml),
			chromedp.Click(`form.editor button[type=submit]`), chromedp.WaitVisible(`h1 .name`))
		if loc := value(b, chromedp.Location()); !strings.Contains(loc, obj.page+"?applied=1") {
			t.Fatalf("after applying, the browser is at %s, want %s", loc, obj.page)
		}
	}
	served := func() bool {
		req, _ := http.NewRequest(http.MethodGet, "http://"+d.httpAddr+"/hello", nil)
		req.Host = "console.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && string(body) == "console ok"
	}
	waitFor(t, served)
	// The route's status is written by the controller after the data plane took the route;
	// on a loaded machine that can come after the first reload.
	b.reloadUntil("the route's status conditions", `document.querySelector("table.conditions") !== null`)
	b.waitJS("the route's Accepted condition", `[...document.querySelectorAll("table.conditions tr.ok td")].some(td => td.textContent === "Accepted")`)
	b.run(b.shot("route"))

	// Validation errors at their field's line: an unknown field (strict validation) and a
	// value the upstream schema refuses.
	for _, c := range []struct{ name, from, to, field, shot string }{
		{"unknown field", "  hostnames:", "  hostnamez:", "spec.hostnamez", "validation-error"},
		{"schema rule", "        value: /\n", "        value: login\n", "spec.rules[0].matches[0].path", ""},
	} {
		bad := strings.Replace(strings.Replace(route, "console-route", "bad-route", 1), c.from, c.to, 1)
		wantLine := 0
		for i, l := range strings.Split(bad, "\n") {
			if strings.Contains(l, strings.TrimSpace(strings.Split(c.to, "\n")[0])) {
				wantLine = i + 1
				break
			}
		}
		b.run(chromedp.Navigate(p+"/new"), chromedp.WaitVisible(`#yaml`), chromedp.SetValue(`#yaml`, bad),
			chromedp.Click(`form.editor button[type=submit]`), chromedp.WaitVisible(`.errors`))
		errLines := value(b, chromedp.Evaluate[[]string](`[...document.querySelectorAll(".listing li.has-error")].map(li => li.value + " " + li.textContent)`))
		found := false
		for _, l := range errLines {
			if strings.Contains(l, c.field) {
				n, _ := strconv.Atoi(strings.Fields(l)[0])
				// The error sits at the field's line, or (a rule on a whole object) at the
				// line of that object's key, just above.
				found = n == wantLine || n == wantLine-1 || n == wantLine-2
			}
		}
		if !found {
			t.Errorf("%s: no error for %s at line %d; error lines: %q", c.name, c.field, wantLine, errLines)
		}
		if c.shot != "" {
			b.run(b.shot(c.shot))
		}
	}

	// The charts move under load.
	b.run(chromedp.Navigate(p + "/metrics"))
	var load atomic.Bool
	load.Store(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for load.Load() {
			served()
		}
	}()
	b.waitJS("a chart row for the route", `!!document.querySelector('tr[data-route*="console-route"]')`)
	b.waitJS("a request rate above zero", `parseFloat(document.querySelector('tr[data-route*="console-route"] [data-field=rps]').textContent) > 0`)
	b.waitJS("the rate chart drawn with 5 points or more", `parseInt(document.querySelector('tr[data-route*="console-route"] svg').dataset.points || "0") >= 5 && document.querySelector('tr[data-route*="console-route"] polyline').getAttribute("points").split(" ").length >= 5`)
	b.run(b.shot("traffic"))
	b.run(chromedp.Navigate(p + "/"))
	b.waitJS("the overview's request rate above zero", `parseFloat(document.querySelector("[data-top=total] [data-field=rps]").textContent) > 0`)
	b.waitJS("the overview's chart with 5 points", `parseInt(document.querySelector("svg[data-chart=total-rps]").dataset.points || "0") >= 5`)
	b.run(b.shot("overview-traffic"))
	load.Store(false)
	<-done

	// The explain view says which rule serves a URL.
	_, httpPort, _ := net.SplitHostPort(d.httpAddr)
	b.run(chromedp.Navigate(p+"/explain"), chromedp.WaitVisible(`#url`),
		chromedp.SetValue(`#url`, "http://console.example.com:"+httpPort+"/users"), chromedp.Click(`form.explain button`),
		chromedp.WaitVisible(`.explain-result`))
	if result := value(b, chromedp.Text(`.explain-result`)); !strings.Contains(result, "SERVED BY") || !strings.Contains(result, "console-route") {
		t.Errorf("explain view:\n%s", result)
	}
	b.run(b.shot("explain"))

	// The access log tail shows the requests.
	b.run(chromedp.Navigate(p + "/logs"))
	b.waitJS("access-log lines of the route", `document.querySelector("[data-logs]").textContent.includes("console-route")`)
	b.run(b.shot("logs"))

	// An EdgeFunction's revisions, and a rollback from the console.
	fn := func(v string) string {
		return "apiVersion: extensions.apoxy.dev/v1alpha2\nkind: EdgeFunction\nmetadata: {name: hello}\nspec:\n  template:\n    mode: backend\n" +
			"    code:\n      jsSource:\n        assets:\n          files:\n          - path: index.js\n            content: |\n" +
			"              export default { async fetch() { return new Response(\"" + v + "\"); } };\n"
	}
	readyRevisions := func(n int) func() bool {
		return func() bool {
			out := d.apoxy(t, "", "edgefunction", "revisions", "hello").stdout
			return strings.Count(out, "Ready") >= n && strings.Contains(out, "live")
		}
	}
	must(t, d.apoxy(t, fn("v1"), "apply", "-f", "-"))
	waitForLong(t, readyRevisions(1))
	must(t, d.apoxy(t, fn("v2"), "apply", "-f", "-"))
	waitForLong(t, readyRevisions(2))
	b.run(chromedp.Navigate(p+"/k/edgefunctions/default/hello"), chromedp.WaitVisible(`table.revisions`))
	b.waitJS("two revisions, the newest live", `document.querySelectorAll("table.revisions tbody tr").length === 2 && document.querySelector("table.revisions tbody tr").classList.contains("live")`)
	older := value(b, chromedp.Evaluate[string](`document.querySelector("table.revisions tbody tr:nth-child(2) td").textContent`))
	b.run(b.shot("function"))
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`window.confirm = () => true, true`)); err != nil {
		t.Fatal(err)
	}
	b.run(chromedp.Click(`table.revisions tbody tr:nth-child(2) button`), chromedp.WaitVisible(`.done`))
	if done := value(b, chromedp.Text(`.done`)); !strings.Contains(done, "rolled back to "+older) {
		t.Errorf("rollback notice %q, want rolled back to %s", done, older)
	}
	waitForLong(t, func() bool {
		out := d.apoxy(t, "", "edgefunction", "revisions", "hello").stdout
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, older) {
				return strings.Contains(l, "live (pinned)")
			}
		}
		return false
	})

	// Keyboard and labels: the first Tab reaches the skip link; every field has a label.
	b.run(chromedp.Navigate(p+"/explain"), chromedp.WaitVisible(`#url`))
	if err := chromedp.Do(b.ctx, chromedp.KeyEvent("\t")); err != nil {
		t.Fatal(err)
	}
	if f := value(b, chromedp.Evaluate[string](`document.activeElement.className`)); f != "skip" {
		t.Errorf("the first Tab focuses %q, want the skip link", f)
	}
	for _, page := range []string{"/explain", "/new", "/logs", "/k/httproutes/default/console-route"} {
		b.run(chromedp.Navigate(p+page), chromedp.WaitVisible(`main h1`))
		if n := value(b, chromedp.Evaluate[int](`[...document.querySelectorAll("input:not([type=hidden]), textarea, select")].filter(e => e.labels.length === 0).length`)); n != 0 {
			t.Errorf("%s: %d form fields without a label", page, n)
		}
	}

	b.run(chromedp.Navigate(p+"/k/httproutes"), chromedp.WaitVisible(`table.objects`), b.shot("routes"),
		chromedp.Navigate(p+"/k/backends"), chromedp.WaitVisible(`table.objects`), b.shot("backends"))

	// Signed out, the console asks for a key; a project key reaches its project only.
	b.run(chromedp.Click(`header.top .signout button`), chromedp.WaitVisible(`#key`),
		chromedp.Navigate(b.base+"/console/p/default/"), chromedp.WaitVisible(`#key`), b.shot("signin"),
		chromedp.SetValue(`#key`, projectKey), chromedp.Submit(`#key`), chromedp.WaitVisible(`tr[data-gateway="default/default"]`))
	b.run(chromedp.Navigate(b.base+"/console/p/other/"), chromedp.WaitVisible(`main .error`))
	if denied := value(b, chromedp.Text(`main .error`)); !strings.Contains(denied, `Your key is for project "default"`) {
		t.Errorf("a project key on another project's page: %q", denied)
	}
}
