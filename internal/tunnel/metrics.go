package tunnel

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descAgents  = prometheus.NewDesc("apoxy_tunnel_sessions", "CONNECT-IP sessions connected now, by project.", []string{"project"}, nil)
	descPkts    = prometheus.NewDesc("apoxy_tunnel_packets_total", "IP packets through the project's tunnel sessions, by direction (in: from agents; out: to them; dropped).", []string{"project", "direction"}, nil)
	descStreams = prometheus.NewDesc("apoxy_tunnel_streams_total", "TCP connections the gateway opened to agents as QUIC streams, by result (ok; refused: the agent drained or nothing listened; error: the agent did not answer).", []string{"result"}, nil)
	descRetx    = prometheus.NewDesc("apoxy_tunnel_tcp_retransmits_total", "TCP segments the gateway's side of a project's overlay sent again (loss in the tunnels).", []string{"project"}, nil)
)

// Describe implements prometheus.Collector.
func (s *Server) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAgents
	ch <- descPkts
	ch <- descRetx
	ch <- descStreams
}

// Collect implements prometheus.Collector: each project with an overlay.
func (s *Server) Collect(ch chan<- prometheus.Metric) {
	for i, result := range []string{"ok", "refused", "error"} {
		ch <- prometheus.MustNewConstMetric(descStreams, prometheus.CounterValue, float64(s.streams[i].Load()), result)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, p := range s.projects {
		st := p.stack.Stats()
		ch <- prometheus.MustNewConstMetric(descAgents, prometheus.GaugeValue, float64(len(p.agents)), name)
		ch <- prometheus.MustNewConstMetric(descPkts, prometheus.CounterValue, float64(st.PacketsIn.Load()), name, "in")
		ch <- prometheus.MustNewConstMetric(descPkts, prometheus.CounterValue, float64(st.PacketsOut.Load()), name, "out")
		ch <- prometheus.MustNewConstMetric(descPkts, prometheus.CounterValue, float64(st.Dropped.Load()), name, "dropped")
		ch <- prometheus.MustNewConstMetric(descRetx, prometheus.CounterValue, float64(p.stack.TCPRetransmits()), name)
	}
}
