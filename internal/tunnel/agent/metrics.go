package agent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// metrics are the agent's own Prometheus metrics (its --metrics-addr serves them).
type metrics struct {
	reg      *prometheus.Registry
	up       prometheus.Gauge
	connects *prometheus.CounterVec
	forwards *prometheus.CounterVec
	// bytes counts the traffic of ended sessions; the live ones are added at scrape time.
	bytes *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "apoxy_tunnel_agent_sessions",
			Help: "CONNECT-IP sessions up now."}),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "apoxy_tunnel_agent_connects_total",
			Help: "Session attempts, by result (ok, error)."}, []string{"result"}),
		forwards: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "apoxy_tunnel_agent_forwarded_connections_total",
			Help: "Connections from the gateway forwarded to local services, by result (ok, refused)."}, []string{"result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "apoxy_tunnel_agent_ended_session_bytes_total",
			Help: "IP bytes through sessions that have ended, by direction."}, []string{"direction"}),
	}
	m.reg.MustRegister(m.up, m.connects, m.forwards, m.bytes)
	return m
}

// MetricsHandler serves the agent's metrics, with the traffic of live sessions.
func (a *Agent) MetricsHandler() http.Handler {
	total := func(dir string) func() float64 {
		return func() float64 {
			s := a.Status()
			if dir == "in" {
				return float64(s.BytesIn)
			}
			return float64(s.BytesOut)
		}
	}
	a.metrics.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "apoxy_tunnel_agent_received_bytes_total", Help: "IP bytes received from the gateway."}, total("in")),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "apoxy_tunnel_agent_sent_bytes_total", Help: "IP bytes sent to the gateway."}, total("out")),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "apoxy_tunnel_agent_open_forwarded_connections", Help: "Forwarded connections open now."},
			func() float64 { return float64(a.forwarded.Load()) }),
	)
	if u, ok := a.plane.(userPlane); ok {
		a.metrics.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "apoxy_tunnel_agent_tcp_retransmits_total",
			Help: "TCP segments the agent's user-space stack sent again (loss in the tunnel)."}, func() float64 { return float64(u.retransmits()) }))
	}
	return promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{})
}

// HealthHandler serves /livez (the process runs) and /readyz (a session is up).
func (a *Agent) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := a.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
