package upstream

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// Outlier detection (ir.OutlierDetection, per cluster and data-plane instance) ejects an
// address from the pick set after a run of failed attempts, as the proxy reports them
// (Report):
//
//   - Consecutive5xx failures in a row (5xx responses, connect failures, timeouts and other
//     transport errors) or ConsecutiveGatewayErrors (502, 503, 504 and those same errors; a
//     500 breaks this run) eject it. Zero turns a detector off. A response below 500 resets
//     both runs.
//   - The ejection lasts BaseEjectionTime × the number of times the address was ejected,
//     capped at MaxEjectionTime. The multiplier decays by one for each BaseEjectionTime the
//     address then serves without a new ejection, so an endpoint that recovered for good is
//     back to the base time eventually while one that keeps failing is held out longer.
//   - At most MaxEjectionPercent of the cluster's addresses are ejected at once, but at least
//     one may be when it has two or more; an address is never ejected when it is the last one
//     in the pick set, and should health checks then empty the set, the ejected addresses the
//     health check holds healthy serve rather than none.
//   - A sweep every Interval returns the addresses whose ejection time is over, with their
//     failure runs reset (so an ejection lasts up to one Interval longer than its time).
//   - Ejection and the active health check are independent: an address is picked only when
//     the health check holds it healthy and it is not ejected. An address the health check
//     marks down stays out after its ejection ends; a passing health check does not end an
//     ejection (the health endpoint may answer while real requests fail).
//
// Zero durations in the IR get the design's defaults (interval 10 s, base 30 s, max 300 s).
type outlierDetector struct {
	consecutive5xx, consecutiveGateway int32
	interval, base, maxTime            int64 // ns
	maxPercent                         int

	// mu guards the addresses' ejection bookkeeping (ejectedUntil, timesEjected, decayFrom)
	// and serialises ejection decisions. Never held while rebuilding the pick set.
	mu sync.Mutex
	// total counts ejections; current is the number of addresses ejected now.
	total   atomic.Uint64
	current atomic.Int64
}

func newOutlierDetector(od *ir.OutlierDetection) *outlierDetector {
	o := &outlierDetector{
		consecutive5xx:     int32(max(od.Consecutive5xx, 0)),
		consecutiveGateway: int32(max(od.ConsecutiveGatewayErrors, 0)),
		interval:           int64(od.Interval),
		base:               int64(od.BaseEjectionTime),
		maxTime:            int64(od.MaxEjectionTime),
		maxPercent:         min(max(od.MaxEjectionPercent, 0), 100),
	}
	if o.interval <= 0 {
		o.interval = int64(10 * time.Second)
	}
	if o.base <= 0 {
		o.base = int64(30 * time.Second)
	}
	if o.maxTime <= 0 {
		o.maxTime = max(int64(300*time.Second), o.base)
	}
	o.maxTime = max(o.maxTime, o.base)
	return o
}

// Report tells outlier detection how an attempt sent to a (picked from this cluster) ended:
// the response status, or the error when there was no response. Call it once per attempt, when
// the response head arrived (status, nil) or the attempt failed (0, err) — connect failures and
// timeouts count as 5xx and as gateway errors. Do not report responses the gateway made itself
// (breaker, rate limit, fault injection); errors that are not the endpoint's (the client went
// away: context.Canceled; ErrOverloaded) are ignored. Without outlier detection it is one nil
// check; a success costs two atomic loads, a failure an atomic add or two, and only the
// failure reaching a threshold takes a lock.
func (c *Cluster) Report(a *Address, status int, err error) {
	o := c.outlier
	if o == nil || a == nil {
		return
	}
	var gateway bool
	switch {
	case err != nil:
		if errors.Is(err, context.Canceled) || errors.Is(err, ErrOverloaded) {
			return
		}
		gateway = true
	case status >= 500:
		gateway = status == 502 || status == 503 || status == 504
	default:
		if a.run5xx.Load() != 0 {
			a.run5xx.Store(0)
		}
		if a.runGateway.Load() != 0 {
			a.runGateway.Store(0)
		}
		return
	}
	n5xx := a.run5xx.Add(1)
	var nGateway int32
	if gateway {
		nGateway = a.runGateway.Add(1)
	} else if a.runGateway.Load() != 0 {
		a.runGateway.Store(0)
	}
	if o.consecutive5xx > 0 && n5xx >= o.consecutive5xx || o.consecutiveGateway > 0 && nGateway >= o.consecutiveGateway {
		c.eject(a)
	}
}

// eject takes a out of the pick set if the limits allow it.
func (c *Cluster) eject(a *Address) {
	o := c.outlier
	now := c.opts.Now().UnixNano()
	o.mu.Lock()
	if a.ejected.Load() || !a.healthy.Load() {
		o.mu.Unlock()
		return
	}
	c.mu.RLock()
	total, ejected, serving, member := len(c.addrs), 0, 0, false
	for _, x := range c.addrs {
		if x == a {
			member = true
		}
		if x.ejected.Load() {
			ejected++
		} else if x.healthy.Load() {
			serving++
		}
	}
	c.mu.RUnlock()
	allowed := total * o.maxPercent / 100
	if total >= 2 {
		allowed = max(allowed, 1)
	}
	if !member || ejected+1 > allowed || serving <= 1 {
		o.mu.Unlock()
		return
	}
	a.timesEjected++
	a.ejectedUntil = now + min(o.base*int64(a.timesEjected), o.maxTime)
	a.ejected.Store(true)
	o.total.Add(1)
	o.current.Store(int64(ejected + 1))
	times := a.timesEjected
	o.mu.Unlock()
	c.log.Warn("endpoint ejected by outlier detection", "address", a.IP, "times", times,
		"for", time.Duration(min(o.base*int64(times), o.maxTime)))
	c.rebuildHealthy()
	if c.opts.OnOutlier != nil {
		c.opts.OnOutlier(c.spec.Name, a.IP, true, ejected+1)
	}
}

// sweepLoop runs the outlier sweep every Interval until the cluster stops.
func (c *Cluster) sweepLoop() {
	defer c.wg.Done()
	t := time.NewTicker(time.Duration(c.outlier.interval))
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.sweepOutliers()
		}
	}
}

// sweepOutliers returns the addresses whose ejection is over (failure runs reset) and decays
// the ejection multiplier of addresses serving without a new ejection.
func (c *Cluster) sweepOutliers() {
	o := c.outlier
	now := c.opts.Now().UnixNano()
	var returned []netip.Addr
	o.mu.Lock()
	c.mu.RLock()
	ejected := 0
	for _, a := range c.addrs {
		switch {
		case a.ejected.Load() && now >= a.ejectedUntil:
			a.run5xx.Store(0)
			a.runGateway.Store(0)
			a.ejected.Store(false)
			a.decayFrom = now
			returned = append(returned, a.IP)
		case a.ejected.Load():
			ejected++
		case a.timesEjected > 0 && now-a.decayFrom >= o.base:
			a.timesEjected--
			a.decayFrom = now
		}
	}
	c.mu.RUnlock()
	o.current.Store(int64(ejected))
	o.mu.Unlock()
	if len(returned) == 0 {
		return
	}
	c.log.Info("endpoints returned by outlier detection", "addresses", returned)
	c.rebuildHealthy()
	if c.opts.OnOutlier != nil {
		for _, ip := range returned {
			c.opts.OnOutlier(c.spec.Name, ip, false, ejected)
		}
	}
}

// OutlierStats returns the number of ejections so far and of addresses ejected now (zero
// without outlier detection), for metrics.
func (c *Cluster) OutlierStats() (ejections uint64, ejected int) {
	if c.outlier == nil {
		return 0, 0
	}
	return c.outlier.total.Load(), int(c.outlier.current.Load())
}
