package upstream

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// healthLoop probes one address every interval. UnhealthyThreshold consecutive failures take
// it out of the pick set; HealthyThreshold consecutive successes bring it back.
func (c *Cluster) healthLoop(ctx context.Context, a *Address, hc *ir.HealthCheck) {
	defer c.wg.Done()
	interval := time.Duration(hc.Interval)
	if interval <= 0 {
		interval = 10 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	client := &http.Client{Transport: c.probeTransport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for {
		ok := c.probe(ctx, client, a, hc)
		if ctx.Err() != nil {
			return
		}
		changed := false
		if ok {
			a.failRun = 0
			a.okRun++
			if !a.healthy.Load() && a.okRun >= max(hc.HealthyThreshold, 1) {
				a.healthy.Store(true)
				changed = true
				c.log.Info("endpoint healthy", "address", a.IP)
			}
		} else {
			a.okRun = 0
			a.failRun++
			if a.healthy.Load() && a.failRun >= max(hc.UnhealthyThreshold, 1) {
				a.healthy.Store(false)
				changed = true
				c.log.Warn("endpoint unhealthy", "address", a.IP)
			}
		}
		if changed {
			c.rebuildHealthy()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probePort is the port health checks use: the first port routes use for this backend.
func (c *Cluster) probePort() int {
	if p := c.port.Load(); p > 0 {
		return int(p)
	}
	return 80
}

func (c *Cluster) probe(ctx context.Context, client *http.Client, a *Address, hc *ir.HealthCheck) bool {
	timeout := time.Duration(hc.Timeout)
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hostport := net.JoinHostPort(a.IP.String(), strconv.Itoa(c.probePort()))
	if hc.HTTP == nil {
		conn, err := c.DialContext(ctx, "tcp", hostport)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}
	scheme := "http"
	if c.spec.Protocol == "tls" || c.spec.Protocol == "h2" {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, hc.HTTP.Method, scheme+"://"+hostport+hc.HTTP.Path, nil)
	if err != nil {
		return false
	}
	req.Host = hc.HTTP.Host
	if req.Host == "" {
		req.Host = a.Hostname
	}
	req.Header.Set("User-Agent", "apoxy-health-check")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	if len(hc.HTTP.ExpectedStatuses) > 0 {
		return slices.Contains(hc.HTTP.ExpectedStatuses, resp.StatusCode)
	}
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}
