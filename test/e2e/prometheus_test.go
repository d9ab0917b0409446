package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPrometheusScrapesTheGateway: a real Prometheus (native histograms on) scrapes the admin
// listener while a route serves a known latency mix (9 in 10 requests take 10 ms, 1 in 10
// takes 200 ms); its query API gives back the request count and, through
// histogram_quantile, p50 near 10 ms and p99 near 200 ms.
func TestPrometheusScrapesTheGateway(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("APOXY_REQUIRE_PROMETHEUS") != "" {
			t.Fatal("prometheus is required (APOXY_REQUIRE_PROMETHEUS)")
		}
		t.Skip("prometheus not installed")
	}
	d := startDev(t, "")
	var n atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%10 == 0 {
			time.Sleep(200 * time.Millisecond)
		} else {
			time.Sleep(10 * time.Millisecond)
		}
		fmt.Fprint(w, "ok")
	}))
	defer backend.Close()
	host, port, _ := net.SplitHostPort(backend.Listener.Addr().String())
	must(t, d.apoxy(t, fmt.Sprintf(`apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: timed}
spec: {endpoints: [{ip: %s}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: timed}
spec:
  parentRefs: [{name: default}]
  hostnames: [prom.example.com]
  rules: [{backendRefs: [{kind: Backend, name: timed, port: %s}]}]
`, host, port), "apply", "-f", "-"))
	get := func() int {
		req, _ := http.NewRequest("GET", "http://"+d.httpAddr+"/", nil)
		req.Host = "prom.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, func() bool { return get() == 200 })

	query := startPrometheus(t, bin, d.adminAddr)

	// 400 requests, 20 at a time, while Prometheus scrapes every second; the client keeps
	// its own measure of each, the truth the quantiles are checked against.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var seen []time.Duration
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				t0 := time.Now()
				get()
				d := time.Since(t0)
				mu.Lock()
				seen = append(seen, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(seen)
	truth := func(q float64) float64 { return seen[int(q*float64(len(seen)-1))].Seconds() }
	const sel = `{project="default",gateway="default/default",route="httproute/default/timed/rule/0"}`
	var total, p50, p99 float64
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok1, ok2, ok3 bool
		total, ok1 = query(`sum(apoxy_http_requests_total` + sel + `)`)
		p50, ok2 = query(`histogram_quantile(0.5, sum(increase(apoxy_http_request_duration_seconds` + sel + `[5m])))`)
		p99, ok3 = query(`histogram_quantile(0.99, sum(increase(apoxy_http_request_duration_seconds` + sel + `[5m])))`)
		if ok1 && ok2 && ok3 && total >= 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus: total %v p50 %v p99 %v (%v %v %v)", total, p50, p99, ok1, ok2, ok3)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("prometheus: %v requests, p50 %.1f ms, p99 %.1f ms; the client measured p50 %.1f ms, p99 %.1f ms", total, p50*1000, p99*1000, truth(0.5)*1000, truth(0.99)*1000)
	// The gateway measures a little less than the client (no client-side overhead); its
	// quantiles must land in the right population and near the client's figures.
	if p50 < 0.009 || p50 > truth(0.5)*1.3 {
		t.Errorf("p50 = %.2f ms, want between 9 ms and the client's %.2f ms (+30%%)", p50*1000, truth(0.5)*1000)
	}
	if p99 < 0.18 || p99 > truth(0.99)*1.3 {
		t.Errorf("p99 = %.2f ms, want between 180 ms and the client's %.2f ms (+30%%)", p99*1000, truth(0.99)*1000)
	}
}

// startPrometheus runs a Prometheus (native histograms on) scraping target every second and
// returns a function that runs an instant query and gives its single value.
func startPrometheus(t *testing.T, bin, target string) func(q string) (float64, bool) {
	t.Helper()
	dir := t.TempDir()
	promAddr := freePort(t)
	cfg := fmt.Sprintf("global: {scrape_interval: 1s}\nscrape_configs:\n- job_name: apoxy\n  static_configs: [{targets: ['%s']}]\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	prom := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr, "--enable-feature=native-histograms")
	var plog syncBuffer
	prom.Stdout, prom.Stderr = &plog, &plog
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		prom.Process.Kill()
		prom.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", plog.String())
		}
	})
	query := func(q string) (float64, bool) {
		resp, err := http.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return 0, false
		}
		defer resp.Body.Close()
		var out struct {
			Data struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&out) != nil || len(out.Data.Result) != 1 {
			return 0, false
		}
		s, _ := out.Data.Result[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	waitFor(t, func() bool { v, ok := query(`up{job="apoxy"}`); return ok && v == 1 })
	return query
}
