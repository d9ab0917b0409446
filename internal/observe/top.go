package observe

import (
	"cmp"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TopSnapshot is a project's cumulative per-route figures at one moment; `apoxy top` takes
// one a second and shows the differences (rates, error ratio, latency percentiles over the
// last interval).
type TopSnapshot struct {
	Time   time.Time      `json:"time"`
	Routes []RouteFigures `json:"routes"`
}

// RouteFigures are one route rule's counters since the gateway started.
type RouteFigures struct {
	Route   string `json:"route"`
	Gateway string `json:"gateway"`
	// Requests by status class ("2xx", "5xx"...).
	Requests map[string]uint64 `json:"requests"`
	// Buckets are the latency histogram: cumulative counts by upper bound in seconds,
	// ascending (the native histogram's 10% buckets when present, else the classic ones).
	Buckets []Bucket `json:"buckets"`
	Count   uint64   `json:"count"`
	Sum     float64  `json:"sum"`
}

// Bucket is a cumulative histogram bucket.
type Bucket struct {
	Le    float64 `json:"le"`
	Count uint64  `json:"count"`
}

// Metric names the figures come from (internal/proxy's instruments).
const (
	requestsMetric = "apoxy_http_requests_total"
	durationMetric = "apoxy_http_request_duration_seconds"
)

// Figures reads a project's per-route figures from the data plane's metrics.
func Figures(g prometheus.Gatherer, project string, now time.Time) (*TopSnapshot, error) {
	fams, err := g.Gather()
	if err != nil && len(fams) == 0 {
		return nil, err
	}
	type key struct{ gateway, route string }
	routes := map[key]*RouteFigures{}
	get := func(m *dto.Metric) *RouteFigures {
		l := labels(m)
		if l["project"] != project {
			return nil
		}
		k := key{l["gateway"], l["route"]}
		rf := routes[k]
		if rf == nil {
			rf = &RouteFigures{Route: k.route, Gateway: k.gateway, Requests: map[string]uint64{}}
			routes[k] = rf
		}
		return rf
	}
	for _, f := range fams {
		switch f.GetName() {
		case requestsMetric:
			for _, m := range f.Metric {
				if rf := get(m); rf != nil {
					rf.Requests[labels(m)["code_class"]] += uint64(m.GetCounter().GetValue())
				}
			}
		case durationMetric:
			for _, m := range f.Metric {
				if rf := get(m); rf != nil {
					h := m.GetHistogram()
					rf.Count, rf.Sum, rf.Buckets = h.GetSampleCount(), h.GetSampleSum(), histogramBuckets(h)
				}
			}
		}
	}
	snap := &TopSnapshot{Time: now}
	for _, rf := range routes {
		snap.Routes = append(snap.Routes, *rf)
	}
	slices.SortFunc(snap.Routes, func(a, b RouteFigures) int {
		return cmp.Or(cmp.Compare(a.Gateway, b.Gateway), cmp.Compare(a.Route, b.Route))
	})
	return snap, nil
}

func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.Label))
	for _, l := range m.Label {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// histogramBuckets lists a histogram's cumulative buckets: from its native (exponential)
// buckets when it has them, else its classic ones.
func histogramBuckets(h *dto.Histogram) []Bucket {
	if len(h.PositiveSpan) == 0 && h.GetZeroCount() == 0 {
		var out []Bucket
		for _, b := range h.Bucket {
			out = append(out, Bucket{Le: b.GetUpperBound(), Count: b.GetCumulativeCount()})
		}
		return out
	}
	// Native: bucket i covers (base^(i-1), base^i], base = 2^(2^-schema).
	base := math.Pow(2, math.Pow(2, -float64(h.GetSchema())))
	out := []Bucket{{Le: h.GetZeroThreshold(), Count: h.GetZeroCount()}}
	total := h.GetZeroCount()
	idx, di := int32(0), 0
	count := int64(0)
	for _, sp := range h.PositiveSpan {
		idx += sp.GetOffset()
		for range sp.GetLength() {
			if di < len(h.PositiveDelta) {
				count += h.PositiveDelta[di]
			}
			di++
			// The bucket's lower edge, when the bucket below is not listed (sparse): so that
			// interpolation within it starts there, not at the last listed bound.
			if lo := math.Pow(base, float64(idx-1)); lo > out[len(out)-1].Le {
				out = append(out, Bucket{Le: lo, Count: total})
			}
			total += uint64(count)
			out = append(out, Bucket{Le: math.Pow(base, float64(idx)), Count: total})
			idx++
		}
	}
	return out
}

// TopHandler serves a project's TopSnapshot as JSON.
func TopHandler(g prometheus.Gatherer, project string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		snap, err := Figures(g, project, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(snap)
	})
}

// RouteRates are one route's figures over an interval, what `apoxy top` shows.
type RouteRates struct {
	Route, Gateway string
	// RPS is requests per second; ErrorRatio the share of 5xx among them.
	RPS, ErrorRatio float64
	// P50, P95 and P99 are latency percentiles over the interval (NaN: no request).
	P50, P95, P99 time.Duration
	// Total is the request count since the gateway started.
	Total uint64
}

// Rates computes each route's figures between two snapshots of the same project (prev may be
// nil: rates are then zero and percentiles come from everything since the start).
func Rates(prev, cur *TopSnapshot) []RouteRates {
	old := map[[2]string]*RouteFigures{}
	if prev != nil {
		for i := range prev.Routes {
			r := &prev.Routes[i]
			old[[2]string{r.Gateway, r.Route}] = r
		}
	}
	var out []RouteRates
	for i := range cur.Routes {
		r := &cur.Routes[i]
		rr := RouteRates{Route: r.Route, Gateway: r.Gateway}
		var total, errs uint64
		for class, n := range r.Requests {
			total += n
			if class == "5xx" {
				errs += n
			}
		}
		rr.Total = total
		o := old[[2]string{r.Gateway, r.Route}]
		var dBuckets []Bucket
		if o != nil && prev != nil && r.Count >= o.Count {
			var oTotal, oErrs uint64
			for class, n := range o.Requests {
				oTotal += n
				if class == "5xx" {
					oErrs += n
				}
			}
			dt := cur.Time.Sub(prev.Time).Seconds()
			if dt > 0 && total >= oTotal {
				rr.RPS = float64(total-oTotal) / dt
				if total > oTotal {
					rr.ErrorRatio = float64(errs-oErrs) / float64(total-oTotal)
				}
			}
			dBuckets = deltaBuckets(o.Buckets, r.Buckets)
		} else if prev == nil || o == nil {
			dBuckets = r.Buckets
		}
		rr.P50, rr.P95, rr.P99 = quantile(dBuckets, 0.5), quantile(dBuckets, 0.95), quantile(dBuckets, 0.99)
		out = append(out, rr)
	}
	return out
}

// deltaBuckets subtracts an earlier cumulative histogram from a later one, bucket by bound.
func deltaBuckets(old, cur []Bucket) []Bucket {
	before := map[float64]uint64{}
	for _, b := range old {
		before[b.Le] = b.Count
	}
	out := make([]Bucket, 0, len(cur))
	var prevOld uint64
	for _, b := range cur {
		o, ok := before[b.Le]
		if !ok {
			o = prevOld // a bucket that was empty then: its cumulative count equals the one below
		}
		prevOld = o
		if b.Count < o {
			return nil // the histogram was reset
		}
		out = append(out, Bucket{Le: b.Le, Count: b.Count - o})
	}
	return out
}

// quantile estimates the q-quantile of a cumulative histogram by linear interpolation within
// the bucket holding it (as PromQL's histogram_quantile does); -1 when it is empty.
func quantile(buckets []Bucket, q float64) time.Duration {
	if len(buckets) == 0 || buckets[len(buckets)-1].Count == 0 {
		return -1
	}
	total := float64(buckets[len(buckets)-1].Count)
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range buckets {
		if float64(b.Count) >= rank {
			in := float64(b.Count) - below
			frac := 1.0
			if in > 0 {
				frac = (rank - below) / in
			}
			upper := b.Le
			if math.IsInf(upper, 1) {
				upper = lower
			}
			return time.Duration((lower + (upper-lower)*frac) * float64(time.Second))
		}
		lower, below = b.Le, float64(b.Count)
	}
	return time.Duration(lower * float64(time.Second))
}
