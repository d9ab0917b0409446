package upstream

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// outlierCluster starts a cluster of n static endpoints with outlier detection od on clock;
// the background sweep is made rare (the tests sweep by hand).
func outlierCluster(t *testing.T, n int, od ir.OutlierDetection, clock *fakeClock, events *outlierEvents) *Cluster {
	t.Helper()
	od.Interval = ir.Duration(time.Hour)
	opts := Options{Now: clock.Now}
	if events != nil {
		opts.OnOutlier = events.record
	}
	b := &ir.Backend{Name: "p/ns/flaky", Protocol: "plain", Endpoints: staticEndpoints(n), Outlier: &od}
	return testCluster(t, opts, b)
}

type outlierEvents struct {
	mu     sync.Mutex
	events []string
}

func (e *outlierEvents) record(backend string, ip netip.Addr, ejected bool, now int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	verb := "returned"
	if ejected {
		verb = "ejected"
	}
	e.events = append(e.events, backend+" "+ip.String()+" "+verb+" "+strconv.Itoa(now))
}

func (e *outlierEvents) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.events...)
}

// inPickSet reports whether a is in the cluster's pick set.
func inPickSet(c *Cluster, a *Address) bool {
	for _, x := range *c.healthy.Load() {
		if x == a {
			return true
		}
	}
	return false
}

func fail(c *Cluster, a *Address, n, status int) {
	for range n {
		c.Report(a, status, nil)
	}
}

var defaultOutlier = ir.OutlierDetection{Consecutive5xx: 5, BaseEjectionTime: ir.Duration(30 * time.Second),
	MaxEjectionTime: ir.Duration(300 * time.Second), MaxEjectionPercent: 50}

// TestOutlierEjectsAfterConsecutive5xx (design §5.51): five 5xx in a row eject the endpoint:
// it leaves the pick set, the hook and counters say so.
func TestOutlierEjectsAfterConsecutive5xx(t *testing.T) {
	clock := newFakeClock()
	ev := &outlierEvents{}
	c := outlierCluster(t, 3, defaultOutlier, clock, ev)
	a := c.Addresses()[0]
	fail(c, a, 4, 500)
	if a.Ejected() || !inPickSet(c, a) {
		t.Fatal("ejected after 4 failures, want 5")
	}
	c.Report(a, 503, nil)
	if !a.Ejected() || inPickSet(c, a) {
		t.Fatal("not ejected after 5 consecutive 5xx")
	}
	for range 100 {
		if p, _ := c.Pick(nil); p == a {
			t.Fatal("the ejected endpoint was picked")
		}
	}
	if total, now := c.OutlierStats(); total != 1 || now != 1 {
		t.Errorf("OutlierStats = %d, %d; want 1 ejection, 1 ejected", total, now)
	}
	if got := ev.list(); len(got) != 1 || got[0] != "p/ns/flaky 10.1.0.1 ejected 1" {
		t.Errorf("OnOutlier events %v", got)
	}
}

// TestOutlierSuccessResetsRun: a response below 500 breaks the run.
func TestOutlierSuccessResetsRun(t *testing.T) {
	c := outlierCluster(t, 3, defaultOutlier, newFakeClock(), nil)
	a := c.Addresses()[0]
	fail(c, a, 4, 500)
	c.Report(a, 404, nil)
	fail(c, a, 4, 502)
	if a.Ejected() {
		t.Fatal("ejected though a 404 broke the run of failures")
	}
	c.Report(a, 500, nil)
	if !a.Ejected() {
		t.Fatal("not ejected after five more")
	}
}

// TestOutlierGatewayErrors: consecutiveGatewayErrors counts 502/503/504 and transport errors
// (connect failures, timeouts); a 500 breaks that run; the client going away is not counted.
func TestOutlierGatewayErrors(t *testing.T) {
	od := defaultOutlier
	od.Consecutive5xx, od.ConsecutiveGatewayErrors = 0, 3
	c := outlierCluster(t, 3, od, newFakeClock(), nil)
	a := c.Addresses()[0]
	c.Report(a, 502, nil)
	c.Report(a, 504, nil)
	c.Report(a, 500, nil)
	c.Report(a, 503, nil)
	c.Report(a, 0, context.Canceled) // the client went away: not the endpoint's failure
	c.Report(a, 0, ErrOverloaded)    // our own breaker
	if a.Ejected() {
		t.Fatal("ejected though a 500 broke the gateway-error run")
	}
	refused := &netOpError{syscall.ECONNREFUSED}
	c.Report(a, 0, refused)
	c.Report(a, 0, context.DeadlineExceeded)
	if !a.Ejected() {
		t.Fatal("503, connection refused, timeout: not ejected after three gateway errors")
	}
}

type netOpError struct{ err error }

func (e *netOpError) Error() string { return "dial tcp: " + e.err.Error() }
func (e *netOpError) Unwrap() error { return e.err }

// TestOutlierRecoveryAndDoubling (design §5.51): the endpoint returns after the base ejection
// time (at a sweep) with its runs reset; a second ejection lasts twice as long.
func TestOutlierRecoveryAndDoubling(t *testing.T) {
	clock := newFakeClock()
	ev := &outlierEvents{}
	c := outlierCluster(t, 3, defaultOutlier, clock, ev)
	a := c.Addresses()[1]
	fail(c, a, 5, 500)
	clock.Advance(29 * time.Second)
	c.sweepOutliers()
	if !a.Ejected() {
		t.Fatal("returned before the 30 s ejection time")
	}
	clock.Advance(time.Second)
	c.sweepOutliers()
	if a.Ejected() || !inPickSet(c, a) {
		t.Fatal("not back after 30 s")
	}
	if a.upSince.Load() != clock.Now().UnixNano() {
		t.Error("the returning endpoint is not stamped for slow start")
	}
	fail(c, a, 4, 500)
	if a.Ejected() {
		t.Fatal("the failure run was not reset on return")
	}
	c.Report(a, 500, nil)
	if !a.Ejected() {
		t.Fatal("not ejected a second time")
	}
	clock.Advance(59 * time.Second)
	c.sweepOutliers()
	if !a.Ejected() {
		t.Fatal("the second ejection ended before 60 s")
	}
	clock.Advance(time.Second)
	c.sweepOutliers()
	if a.Ejected() {
		t.Fatal("the second ejection did not end at 60 s")
	}
	if total, now := c.OutlierStats(); total != 2 || now != 0 {
		t.Errorf("OutlierStats = %d, %d; want 2 ejections, none now", total, now)
	}
	want := []string{"p/ns/flaky 10.1.0.2 ejected 1", "p/ns/flaky 10.1.0.2 returned 0", "p/ns/flaky 10.1.0.2 ejected 1", "p/ns/flaky 10.1.0.2 returned 0"}
	if got := ev.list(); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[3] != want[3] {
		t.Errorf("events %v, want %v", got, want)
	}
}

// TestOutlierCapAndDecay: ejection time is capped at maxEjectionTime; serving a base ejection
// time without a new ejection lowers the multiplier by one.
func TestOutlierCapAndDecay(t *testing.T) {
	clock := newFakeClock()
	od := defaultOutlier
	od.MaxEjectionTime = ir.Duration(50 * time.Second)
	c := outlierCluster(t, 3, od, clock, nil)
	a := c.Addresses()[0]
	ejectFor := func() time.Duration {
		t.Helper()
		fail(c, a, 5, 500)
		if !a.Ejected() {
			t.Fatal("not ejected")
		}
		start := clock.Now()
		for a.Ejected() {
			clock.Advance(time.Second)
			c.sweepOutliers()
		}
		return clock.Now().Sub(start)
	}
	for i, want := range []time.Duration{30 * time.Second, 50 * time.Second, 50 * time.Second} {
		if got := ejectFor(); got != want {
			t.Errorf("ejection %d lasted %v, want %v", i+1, got, want)
		}
	}
	// Three ejections: the multiplier is 3. Serving 2 × 30 s lowers it to 1.
	for range 2 {
		clock.Advance(30 * time.Second)
		c.sweepOutliers()
	}
	if got := ejectFor(); got != 50*time.Second {
		t.Errorf("after decaying to 1, the next ejection (×2) lasted %v, want the 50 s cap of 60 s", got)
	}
	for range 4 {
		clock.Advance(30 * time.Second)
		c.sweepOutliers()
	}
	if got := ejectFor(); got != 30*time.Second {
		t.Errorf("after decaying to 0, the next ejection lasted %v, want the base 30 s", got)
	}
}

// TestOutlierMaxPercent (design §5.52): at most maxEjectionPercent of the endpoints are
// ejected, but at least one may be when the pool has two or more.
func TestOutlierMaxPercent(t *testing.T) {
	od := defaultOutlier
	od.MaxEjectionPercent = 10
	c := outlierCluster(t, 3, od, newFakeClock(), nil)
	addrs := c.Addresses()
	fail(c, addrs[0], 5, 500)
	fail(c, addrs[1], 10, 500)
	if !addrs[0].Ejected() || addrs[1].Ejected() {
		t.Errorf("3 endpoints at 10%%: ejected %v %v, want the first only (the at-least-one rule)", addrs[0].Ejected(), addrs[1].Ejected())
	}

	od.MaxEjectionPercent = 20
	c = outlierCluster(t, 10, od, newFakeClock(), nil)
	addrs = c.Addresses()
	for _, a := range addrs[:4] {
		fail(c, a, 5, 500)
	}
	n := 0
	for _, a := range addrs {
		if a.Ejected() {
			n++
		}
	}
	if _, now := c.OutlierStats(); n != 2 || now != 2 {
		t.Errorf("10 endpoints at 20%%: %d ejected (stats %d), want 2", n, now)
	}
}

// TestOutlierNeverLastEndpoint (design §5.52): a one-endpoint pool is never ejected, nor the
// last endpoint serving in a larger pool.
func TestOutlierNeverLastEndpoint(t *testing.T) {
	od := defaultOutlier
	od.MaxEjectionPercent = 100
	c := outlierCluster(t, 1, od, newFakeClock(), nil)
	a := c.Addresses()[0]
	fail(c, a, 20, 503)
	if a.Ejected() {
		t.Fatal("the only endpoint was ejected")
	}
	c = outlierCluster(t, 2, od, newFakeClock(), nil)
	addrs := c.Addresses()
	fail(c, addrs[0], 5, 503)
	fail(c, addrs[1], 20, 503)
	if !addrs[0].Ejected() || addrs[1].Ejected() {
		t.Fatalf("two endpoints at 100%%: ejected %v %v, want the first only", addrs[0].Ejected(), addrs[1].Ejected())
	}
	if p, err := c.Pick(nil); err != nil || p != addrs[1] {
		t.Fatalf("Pick = %v, %v", p, err)
	}
	// The health check then takes the last one down: the ejected endpoint serves rather
	// than none.
	addrs[1].healthy.Store(false)
	c.rebuildHealthy()
	if p, err := c.Pick(nil); err != nil || p != addrs[0] {
		t.Fatalf("with the serving endpoint down, Pick = %v, %v; want the ejected one rather than none", p, err)
	}
}

// TestOutlierHealthCheckDownStaysOut (design §5.53): an endpoint the health check marks down
// stays out when its ejection ends, until the check passes; a passing check does not end an
// ejection; a down endpoint is not ejected.
func TestOutlierHealthCheckDownStaysOut(t *testing.T) {
	clock := newFakeClock()
	c := outlierCluster(t, 3, defaultOutlier, clock, nil)
	addrs := c.Addresses()
	a := addrs[0]
	fail(c, a, 5, 500)
	a.healthy.Store(false) // the health check fails too
	c.rebuildHealthy()
	clock.Advance(30 * time.Second)
	c.sweepOutliers()
	if a.Ejected() {
		t.Fatal("still ejected after its time")
	}
	if inPickSet(c, a) {
		t.Fatal("back in the pick set while the health check holds it down")
	}
	a.healthy.Store(true) // the health check passes
	c.rebuildHealthy()
	if !inPickSet(c, a) {
		t.Fatal("not back once the health check passes")
	}

	b := addrs[1]
	fail(c, b, 5, 500)
	b.healthy.Store(true)
	c.rebuildHealthy()
	if inPickSet(c, b) {
		t.Fatal("a passing health check ended an ejection")
	}

	d := addrs[2]
	d.healthy.Store(false)
	c.rebuildHealthy()
	fail(c, d, 5, 500)
	if d.Ejected() {
		t.Fatal("an endpoint the health check holds down was ejected")
	}
}

// TestOutlierSurvivesSpecChange: a policy change that keeps outlier detection keeps the
// ejection (the cluster is replaced, the endpoint stays out).
func TestOutlierSurvivesSpecChange(t *testing.T) {
	clock := newFakeClock()
	m := NewManager(Options{Now: clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer m.Close()
	od := defaultOutlier
	od.Interval = ir.Duration(time.Hour)
	b := &ir.Backend{Name: "p/ns/flaky", Protocol: "plain", Endpoints: staticEndpoints(3), Outlier: &od}
	c := m.Sync([]*ir.Backend{b}, nil)[b.Name]
	c.WaitResolved(context.Background())
	fail(c, c.Addresses()[0], 5, 500)
	b2 := *b
	b2.LoadBalancer = &ir.LoadBalancer{Type: LBRandom}
	c2 := m.Sync([]*ir.Backend{&b2}, nil)[b.Name]
	if c2 == c {
		t.Fatal("the changed Backend kept its cluster")
	}
	a := c2.Addresses()[0]
	if !a.Ejected() || inPickSet(c2, a) {
		t.Fatal("the ejection did not survive the change")
	}
	clock.Advance(30 * time.Second)
	c2.sweepOutliers()
	if !inPickSet(c2, a) {
		t.Fatal("not returned after its time in the new cluster")
	}
}

// TestOutlierConcurrent: reports, picks and sweeps from many goroutines (for the race
// detector); the pick set never empties and ejections stay within the limits.
func TestOutlierConcurrent(t *testing.T) {
	clock := newFakeClock()
	od := defaultOutlier
	od.Consecutive5xx, od.ConsecutiveGatewayErrors = 3, 2
	c := outlierCluster(t, 6, od, clock, nil)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				a, err := c.Pick(nil)
				if err != nil {
					t.Error(err)
					return
				}
				a.Begin()
				switch (i + g) % 4 {
				case 0:
					c.Report(a, 200, nil)
				case 1:
					c.Report(a, 503, nil)
				case 2:
					c.Report(a, 0, context.DeadlineExceeded)
				default:
					c.Report(a, 500, nil)
				}
				a.End()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			clock.Advance(10 * time.Second)
			c.sweepOutliers()
			if _, now := c.OutlierStats(); now > 3 {
				t.Errorf("%d of 6 ejected at 50%%", now)
			}
			time.Sleep(time.Millisecond)
		}
		close(stop)
	}()
	wg.Wait()
	for _, a := range c.Addresses() {
		if a.InFlight() != 0 {
			t.Errorf("%s: %d in flight after all ended", a.IP, a.InFlight())
		}
	}
	if total, _ := c.OutlierStats(); total == 0 {
		t.Error("no ejection under a steady stream of failures")
	}
}

// TestSlowStartStampsJoiningEndpoints: an endpoint that comes back (health check) or is newly
// resolved is stamped when it joins the pick set and ramps; the first set of a new cluster is
// not ramped.
func TestSlowStartStampsJoiningEndpoints(t *testing.T) {
	clock := newFakeClock()
	b := &ir.Backend{Name: "p/ns/ss", Protocol: "plain", Endpoints: staticEndpoints(3),
		LoadBalancer: &ir.LoadBalancer{Type: LBRoundRobin, SlowStart: ir.Duration(time.Minute)}}
	c := testCluster(t, Options{Now: clock.Now}, b)
	rr := c.picker.(*RoundRobin)
	if rr.ss.ramp.Load() != nil {
		t.Fatal("the first pick set of a new cluster is ramped")
	}
	a := c.Addresses()[0]
	a.healthy.Store(false)
	c.rebuildHealthy()
	clock.Advance(time.Hour)
	a.healthy.Store(true)
	c.rebuildHealthy()
	if a.upSince.Load() != clock.Now().UnixNano() {
		t.Fatal("the returning endpoint was not stamped")
	}
	r := rr.ss.ramp.Load()
	if r == nil || r.end != clock.Now().Add(time.Minute).UnixNano() {
		t.Fatalf("ramp %+v, want one ending a window from now", r)
	}
	got := shares(rr, *c.healthy.Load(), 9000, noKey)[a]
	if got > 0.1 {
		t.Errorf("the returning endpoint got %.3f of picks at the start of its ramp, want about 0.1/2.1", got)
	}
	clock.Advance(time.Minute)
	if got := shares(rr, *c.healthy.Load(), 9000, noKey)[a]; math.Abs(got-1.0/3) > 0.01 {
		t.Errorf("after the window it got %.3f, want 1/3", got)
	}
}
