package console

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"time"

	"apoxy.dev/apoxy/internal/observe"
)

// maxStreams bounds the chart streams a session keeps the last snapshot of.
const maxStreams = 8

// topState is the last snapshot one chart stream read.
type topState struct {
	snap *observe.TopSnapshot
	seen time.Time
}

// routePoint is one route's figures over the last interval, as the charts draw them.
type routePoint struct {
	Route   string  `json:"route"`
	Gateway string  `json:"gateway"`
	RPS     float64 `json:"rps"`
	// ErrorRatio is the share of 5xx answers.
	ErrorRatio float64 `json:"errorRatio"`
	// P50, P95 and P99 are in milliseconds; -1 when no request ended in the interval.
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Total uint64  `json:"total"`
}

// topData answers a chart's poll: each route's rate, error ratio and latency percentiles
// since the stream's previous poll, from the project's API (/telemetry/top, what `apoxy top`
// reads) with the session's key.
func (p *pageCtx) topData() {
	var cur observe.TopSnapshot
	if err := p.s.api.getJSON(p.ctx(), "/projects/"+p.project+observe.TopPath, nil, "application/json", &cur); err != nil {
		http.Error(p.w, err.Error(), http.StatusBadGateway)
		return
	}
	key := p.project + "/" + p.r.URL.Query().Get("stream")
	p.s.mu.Lock()
	prev := p.s.tops[key]
	p.s.tops[key] = &topState{snap: &cur, seen: time.Now()}
	if len(p.s.tops) > maxStreams {
		var oldest string
		for k, t := range p.s.tops {
			if oldest == "" || t.seen.Before(p.s.tops[oldest].seen) {
				oldest = k
			}
		}
		delete(p.s.tops, oldest)
	}
	p.s.mu.Unlock()
	var prevSnap *observe.TopSnapshot
	if prev != nil {
		prevSnap = prev.snap
	}
	out := struct {
		Time   time.Time    `json:"time"`
		First  bool         `json:"first"`
		Routes []routePoint `json:"routes"`
	}{Time: cur.Time, First: prevSnap == nil, Routes: []routePoint{}}
	ms := func(d time.Duration) float64 {
		if d < 0 {
			return -1
		}
		return math.Round(float64(d)/1e4) / 100
	}
	for _, r := range observe.Rates(prevSnap, &cur) {
		out.Routes = append(out.Routes, routePoint{Route: r.Route, Gateway: r.Gateway, RPS: r.RPS, ErrorRatio: r.ErrorRatio,
			P50: ms(r.P50), P95: ms(r.P95), P99: ms(r.P99), Total: r.Total})
	}
	sort.Slice(out.Routes, func(i, j int) bool { return out.Routes[i].Route < out.Routes[j].Route })
	p.w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(p.w).Encode(out)
}

// logsData streams the project's access log (what `apoxy logs` reads) to the logs page, with
// its filters.
func (p *pageCtx) logsData() {
	q := url.Values{"tail": {"200"}, "follow": {"true"}}
	for _, k := range []string{"route", "status", "function", "tail"} {
		if v := p.r.URL.Query().Get(k); v != "" {
			q.Set(k, v)
		}
	}
	resp, err := p.s.api.do(p.ctx(), http.MethodGet, "/projects/"+p.project+observe.LogsPath, q, "text/plain")
	if err != nil {
		http.Error(p.w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	p.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	p.w.WriteHeader(http.StatusOK)
	f, _ := p.w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := p.w.Write(buf[:n]); werr != nil {
				return
			}
			if f != nil {
				f.Flush()
			}
		}
		if err != nil {
			if err != io.EOF {
				p.c.opts.Logger.Debug("console logs stream ended", "err", err)
			}
			return
		}
	}
}
