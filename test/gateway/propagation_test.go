package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/edgetest"
)

// BenchmarkConfigPropagation: the time from writing a route change to the API server until
// the first request through the gateway sees it (API write, watch, translation, data-plane
// swap), in-process. Each iteration changes a response header the route sets and polls until
// it is served. Reports p50/p99 over the iterations (run with -benchtime=100x).
func BenchmarkConfigPropagation(b *testing.B) {
	ln := echoServer(b, "127.0.0.15:0", "prop", nil)
	e := edgetest.Start(b, edgetest.Options{})
	route := func(v int) string {
		return fmt.Sprintf(`apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: prop}
spec: {endpoints: [{ip: 127.0.0.15}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: prop}
spec:
  parentRefs: [{name: default}]
  hostnames: [prop.example.com]
  rules:
  - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Version, value: "%d"}]}}]
    backendRefs: [{kind: Backend, name: prop, port: %s}]
`, v, portOf(ln))
	}
	c := &http.Client{Timeout: 2 * time.Second}
	version := func() string {
		req, _ := http.NewRequest("GET", "http://"+e.HTTPAddr+"/", nil)
		req.Host = "prop.example.com"
		resp, err := c.Do(req)
		if err != nil {
			return ""
		}
		resp.Body.Close()
		return resp.Header.Get("X-Version")
	}
	e.Apply(route(0))
	e.WaitFor("first version served", func() error {
		if v := version(); v != "0" {
			return fmt.Errorf("X-Version %q", v)
		}
		return nil
	})
	var lat []time.Duration
	var write time.Duration
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		start := time.Now()
		e.Apply(route(i))
		write += time.Since(start)
		for want := fmt.Sprint(i); version() != want; {
			if time.Since(start) > 10*time.Second {
				b.Fatalf("change %d not served after 10 s", i)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(write.Microseconds())/1000/float64(b.N), "api-write-ms")
	b.ReportMetric(0, "ns/op")
}
