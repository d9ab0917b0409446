package authority

import (
	"strconv"
	"sync/atomic"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// countedTypes are the query types counted under their own name; the rest count as OTHER.
var countedTypes = [...]uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeTXT, dns.TypeMX, dns.TypeNS,
	dns.TypeSOA, dns.TypeSRV, dns.TypeCAA, dns.TypeDS, dns.TypeDNSKEY, dns.TypePTR, dns.TypeHTTPS,
	dns.TypeSVCB, dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR}

var typeIndex = func() map[uint16]int {
	m := map[uint16]int{}
	for i, t := range countedTypes {
		m[t] = i + 1
	}
	return m
}()

// Metrics counts queries by type, rcode and transport with atomic counters (no allocation or
// lock per query), and exports them as a Prometheus collector:
// apoxy_dns_queries_total{type,rcode,transport}, apoxy_dns_rate_limited_total{action},
// apoxy_dns_malformed_total, apoxy_dns_notify_total{result}, apoxy_dns_transfers_total{result}.
type Metrics struct {
	queries   [len(countedTypes) + 1][24][2]atomic.Uint64
	limited   [3]atomic.Uint64 // by verdict: drop, slip
	malformed atomic.Uint64
	notifies  [2]atomic.Uint64 // ok, failed
	transfers [2]atomic.Uint64 // ok, refused

	descQueries, descLimited, descMalformed, descNotify, descTransfers *prometheus.Desc
}

func newMetrics() *Metrics {
	return &Metrics{
		descQueries:   prometheus.NewDesc("apoxy_dns_queries_total", "DNS queries answered, by query type, response code and transport.", []string{"type", "rcode", "transport"}, nil),
		descLimited:   prometheus.NewDesc("apoxy_dns_rate_limited_total", "UDP responses withheld by response-rate limiting: dropped, or slipped (sent truncated).", []string{"action"}, nil),
		descMalformed: prometheus.NewDesc("apoxy_dns_malformed_total", "Messages that could not be parsed or were not queries, left unanswered.", nil, nil),
		descNotify:    prometheus.NewDesc("apoxy_dns_notify_total", "NOTIFY messages sent to secondaries, by result.", []string{"result"}, nil),
		descTransfers: prometheus.NewDesc("apoxy_dns_transfers_total", "Zone transfer requests, by result.", []string{"result"}, nil),
	}
}

func (m *Metrics) count(qtype uint16, rcode int, tr Transport) {
	if rcode < 0 || rcode >= 24 {
		rcode = 23
	}
	m.queries[typeIndex[qtype]][rcode][tr].Add(1)
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.descQueries
	ch <- m.descLimited
	ch <- m.descMalformed
	ch <- m.descNotify
	ch <- m.descTransfers
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for ti := range m.queries {
		tname := "OTHER"
		if ti > 0 {
			tname = dns.TypeToString[countedTypes[ti-1]]
		}
		for rc := range m.queries[ti] {
			for tr, trName := range []string{"udp", "tcp"} {
				if v := m.queries[ti][rc][tr].Load(); v > 0 {
					rname, ok := dns.RcodeToString[rc]
					if !ok {
						rname = strconv.Itoa(rc)
					}
					ch <- prometheus.MustNewConstMetric(m.descQueries, prometheus.CounterValue, float64(v), tname, rname, trName)
				}
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(m.descLimited, prometheus.CounterValue, float64(m.limited[drop].Load()), "drop")
	ch <- prometheus.MustNewConstMetric(m.descLimited, prometheus.CounterValue, float64(m.limited[slip].Load()), "slip")
	ch <- prometheus.MustNewConstMetric(m.descMalformed, prometheus.CounterValue, float64(m.malformed.Load()))
	ch <- prometheus.MustNewConstMetric(m.descNotify, prometheus.CounterValue, float64(m.notifies[0].Load()), "ok")
	ch <- prometheus.MustNewConstMetric(m.descNotify, prometheus.CounterValue, float64(m.notifies[1].Load()), "failed")
	ch <- prometheus.MustNewConstMetric(m.descTransfers, prometheus.CounterValue, float64(m.transfers[0].Load()), "ok")
	ch <- prometheus.MustNewConstMetric(m.descTransfers, prometheus.CounterValue, float64(m.transfers[1].Load()), "refused")
}
