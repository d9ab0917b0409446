package observe

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"apoxy.dev/apoxy/internal/accesslog"
)

type streams map[string]*accesslog.Stream

func (s streams) Logs(p string) *accesslog.Stream {
	if s[p] == nil {
		s[p] = &accesslog.Stream{}
	}
	return s[p]
}

func TestLogsHandler(t *testing.T) {
	src := streams{}
	st := src.Logs("p")
	t0 := time.Now()
	for i, e := range []accesslog.Entry{
		{Route: "p/httproute/default/api/rule/0/match/0", Status: 200, Line: []byte("GET /a 200\n")},
		{Route: "p/httproute/default/api/rule/1/match/0", Status: 503, Line: []byte("GET /b 503\n")},
		{Route: "p/httproute/other/web/rule/0/match/0", Status: 404, Line: []byte(`{"status":404}` + "\n")},
	} {
		e.Time = t0.Add(time.Duration(i) * time.Millisecond)
		st.Add(e)
	}
	srv := httptest.NewServer(LogsHandler(src, "p"))
	defer srv.Close()
	get := func(q string) (int, string) {
		resp, err := http.Get(srv.URL + "?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct{ q, want string }{
		{"", "GET /a 200\nGET /b 503\n{\"status\":404}\n"},
		{"status=5xx", "GET /b 503\n"},
		{"status=400-499,200", "GET /a 200\n{\"status\":404}\n"},
		{"route=api", "GET /a 200\nGET /b 503\n"},
		{"route=default/api/rule/1", "GET /b 503\n"},
		{"route=ap", ""},
		{"tail=1", "{\"status\":404}\n"},
		{"since=" + t0.Add(time.Millisecond).UTC().Format(time.RFC3339Nano), "GET /b 503\n{\"status\":404}\n"},
	} {
		if code, got := get(tc.q); code != 200 || got != tc.want {
			t.Errorf("?%s: %d %q, want %q", tc.q, code, got, tc.want)
		}
	}
	_, got := get("output=json&status=5xx")
	var obj map[string]any
	if err := json.Unmarshal([]byte(got), &obj); err != nil || obj["line"] != "GET /b 503" || obj["status"] != 503.0 {
		t.Errorf("json output %q: %v", got, err)
	}
	for _, q := range []string{"status=6xx", "tail=-1", "follow=maybe", "output=yaml", "since=yesterday"} {
		if code, body := get(q); code != 400 || !strings.Contains(body, strings.Split(q, "=")[0]+":") {
			t.Errorf("?%s: %d %q, want 400 naming the parameter", q, code, body)
		}
	}

	// Follow: the kept lines, then new ones as they come, never one twice.
	resp, err := http.Get(srv.URL + "?follow=true&status=5xx")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	if l, _ := rd.ReadString('\n'); l != "GET /b 503\n" {
		t.Fatalf("first followed line %q", l)
	}
	for st.Followers() == 0 {
		time.Sleep(time.Millisecond)
	}
	for i := range 3 {
		st.Add(accesslog.Entry{Time: time.Now(), Route: "p/r", Status: 500 + i, Line: []byte(fmt.Sprintf("new %d\n", i))})
		st.Add(accesslog.Entry{Time: time.Now(), Route: "p/r", Status: 200, Line: []byte("ok\n")})
	}
	for i := range 3 {
		if l, _ := rd.ReadString('\n'); l != fmt.Sprintf("new %d\n", i) {
			t.Fatalf("followed line %d: %q", i, l)
		}
	}
}

func TestFiguresAndRates(t *testing.T) {
	reg := prometheus.NewRegistry()
	req := prometheus.NewCounterVec(prometheus.CounterOpts{Name: requestsMetric}, []string{"project", "gateway", "route", "backend", "code_class"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: durationMetric, Buckets: prometheus.DefBuckets, NativeHistogramBucketFactor: 1.1},
		[]string{"project", "gateway", "route"})
	reg.MustRegister(req, dur)
	observe := func(project string, n int, code string, d time.Duration) {
		for range n {
			req.WithLabelValues(project, "default/gw", "httproute/default/api/rule/0", "default/app", code).Inc()
			dur.WithLabelValues(project, "default/gw", "httproute/default/api/rule/0").Observe(d.Seconds())
		}
	}
	observe("p", 100, "2xx", 10*time.Millisecond)
	observe("q", 100, "2xx", time.Second) // another project: never in p's figures
	t0 := time.Unix(1000, 0)
	s1, err := Figures(reg, "p", t0)
	if err != nil || len(s1.Routes) != 1 || s1.Routes[0].Requests["2xx"] != 100 {
		t.Fatalf("figures: %+v %v", s1, err)
	}
	// Over the next two seconds: 90 fast, 10 slow and failing.
	observe("p", 90, "2xx", 20*time.Millisecond)
	observe("p", 10, "5xx", 400*time.Millisecond)
	s2, _ := Figures(reg, "p", t0.Add(2*time.Second))
	rates := Rates(s1, s2)
	if len(rates) != 1 {
		t.Fatalf("rates: %+v", rates)
	}
	r := rates[0]
	if r.RPS != 50 || r.ErrorRatio != 0.1 || r.Total != 200 {
		t.Errorf("rps %v, error ratio %v, total %d; want 50, 0.1, 200", r.RPS, r.ErrorRatio, r.Total)
	}
	within := func(got, want time.Duration) bool { return got >= want*90/100 && got <= want*110/100 }
	if !within(r.P50, 20*time.Millisecond) || !within(r.P99, 400*time.Millisecond) || !within(r.P95, 400*time.Millisecond) {
		t.Errorf("p50 %v p95 %v p99 %v; want ~20ms, ~400ms, ~400ms (the interval's, not since start)", r.P50, r.P95, r.P99)
	}
	if first := Rates(nil, s1)[0]; first.RPS != 0 || !within(first.P50, 10*time.Millisecond) {
		t.Errorf("first snapshot: %+v", first)
	}
}
