package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"apoxy.dev/apoxy/internal/browsertest"
)

// BenchmarkConsolePaint measures the console's pages in headless Chromium on a project with
// 500 HTTPRoutes (every one Accepted, so the pages show real status): the time from navigation
// to first contentful paint and to the server's last byte, per page load. `make bench-console`
// runs it; the bar is first paint under 1 s.
func BenchmarkConsolePaint(b *testing.B) {
	const routes = 500
	d := startDev(b, "")
	var y strings.Builder
	for i := range routes {
		fmt.Fprintf(&y, `apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: route-%03d}
spec:
  parentRefs: [{name: default}]
  hostnames: [r%03d.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /v%d}}]
    filters: [{type: RequestRedirect, requestRedirect: {statusCode: 301, hostname: example.org}}]
---
`, i, i, i)
	}
	must(b, d.apoxy(b, y.String(), "apply", "-f", "-"))
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out := d.apoxy(b, "", "status").stdout
		if strings.Contains(out, fmt.Sprintf("HTTPRoute %d", routes)) && !strings.Contains(out, "NO STATUS YET") {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("routes not reported within 2 min:\n%s", out)
		}
		time.Sleep(time.Second)
	}
	link := consoleLinkRE.FindStringSubmatch(d.log.String())[1]
	ctx := browsertest.Chromium(b, 10*time.Minute, chromedp.WindowSize(1280, 860))
	if err := chromedp.Do(ctx, chromedp.Navigate(link)); err != nil {
		b.Fatal(err)
	}
	base := "http://" + d.adminAddr + "/console/p/default"
	for _, page := range []struct{ name, path, ready string }{
		{"overview", "/", `tr[data-gateway]`},
		{"httproutes", "/k/httproutes", `table.objects tbody tr:nth-child(500)`},
		{"route", "/k/httproutes/default/route-250", `table.conditions`},
	} {
		b.Run(page.name, func(b *testing.B) {
			var fcp, last float64
			for b.Loop() {
				if err := chromedp.Do(ctx, chromedp.Navigate(base+page.path), chromedp.WaitVisible(page.ready)); err != nil {
					b.Fatal(err)
				}
				v, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`new Promise(resolve => {
					const done = fcp => resolve([fcp, performance.getEntriesByType("navigation")[0].responseEnd]);
					new PerformanceObserver(list => {
						const e = list.getEntriesByName("first-contentful-paint")[0];
						if (e) done(e.startTime);
					}).observe({type: "paint", buffered: true});
					setTimeout(() => done(-1), 5000);
				})`, chromedp.EvalAwaitPromise))
				if err != nil || len(v) != 2 || v[0] < 0 {
					b.Fatalf("paint timing: %v %v", v, err)
				}
				fcp += v[0]
				last += v[1]
			}
			b.ReportMetric(fcp/float64(b.N), "fcp-ms")
			b.ReportMetric(last/float64(b.N), "lastbyte-ms")
		})
	}
}
