package proxy

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// scrapeCollector reports state read when Prometheus scrapes, so the request path pays
// nothing for it: each live server's downstream connections, and per backend its requests
// in flight and how close its circuit breaker is to refusing (Envoy's remaining and open
// gauges). Servers join it in New and leave in Close.
type scrapeCollector struct {
	mu      sync.Mutex
	servers map[*Server]struct{}
}

var (
	scraped = &scrapeCollector{servers: map[*Server]struct{}{}}

	connsDesc     = prometheus.NewDesc("apoxy_downstream_active_connections", "Client connections open on the gateway's listeners.", nil, nil)
	inflightDesc  = prometheus.NewDesc("apoxy_upstream_active_requests", "Requests in flight to a backend's endpoints, by backend.", []string{"backend"}, nil)
	remainingDesc = prometheus.NewDesc("apoxy_upstream_circuit_breaker_remaining", "What a backend's circuit breaker still admits before it refuses, by backend and resource (requests, retries, connections, pending); only for backends with limits.", []string{"backend", "resource"}, nil)
	openDesc      = prometheus.NewDesc("apoxy_upstream_circuit_breaker_open", "1 while a backend's circuit breaker refuses more of a resource (it is at its limit), else 0.", []string{"backend", "resource"}, nil)
)

func (c *scrapeCollector) add(s *Server) {
	c.mu.Lock()
	c.servers[s] = struct{}{}
	c.mu.Unlock()
}

func (c *scrapeCollector) remove(s *Server) {
	c.mu.Lock()
	delete(c.servers, s)
	c.mu.Unlock()
}

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- connsDesc
	ch <- inflightDesc
	ch <- remainingDesc
	ch <- openDesc
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	servers := make([]*Server, 0, len(c.servers))
	for s := range c.servers {
		servers = append(servers, s)
	}
	c.mu.Unlock()
	conns := 0
	for _, s := range servers {
		conns += s.conns.InUse()
		for _, cl := range s.upstreams.Clusters() {
			name := cl.Spec().Name
			var inflight int64
			for _, a := range cl.Addresses() {
				inflight += a.InFlight()
			}
			ch <- prometheus.MustNewConstMetric(inflightDesc, prometheus.GaugeValue, float64(inflight), name)
			st := cl.BreakerStats()
			for _, r := range [...]struct {
				res      string
				cur, max int64
			}{{"requests", st.Requests, st.MaxRequests}, {"retries", st.Retries, st.MaxRetries}, {"connections", st.Connections, st.MaxConnections}, {"pending", st.Pending, st.MaxPending}} {
				if r.max <= 0 {
					continue
				}
				open := 0.0
				if r.cur >= r.max {
					open = 1
				}
				ch <- prometheus.MustNewConstMetric(remainingDesc, prometheus.GaugeValue, float64(max(r.max-r.cur, 0)), name, r.res)
				ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, open, name, r.res)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(connsDesc, prometheus.GaugeValue, float64(conns))
}
