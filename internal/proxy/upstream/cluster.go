// Package upstream owns the data plane's view of backends: resolved endpoint addresses (FQDNs
// re-resolved periodically, the last good answer kept on resolver failure), active health
// state, passive outlier ejection (outlier.go), load balancing among the endpoints left
// (Pickers: least request by default, round robin, random, ring hash, maglev, with slow start
// and consistent-hash keys from requests), circuit breaking (breaker.go), and the transport
// for each protocol.
//
// Clusters are keyed by backend name and outlive snapshot swaps: a new snapshot that still
// names a backend reuses its cluster (addresses, health, connection pools); clusters no
// snapshot names any more are stopped.
package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// ErrNoHealthyEndpoint is returned by Pick when every endpoint is down (or none resolved).
var ErrNoHealthyEndpoint = errors.New("upstream: no healthy endpoint")

// Options tune the manager.
type Options struct {
	// Resolver looks up FQDN endpoints (default DNSResolver). One that is also a
	// TTLResolver or a ScopedResolver is asked through those.
	Resolver Resolver
	// ResolveInterval is how often FQDNs are re-resolved (default 30 s).
	ResolveInterval time.Duration
	// IdleConnTimeout closes pooled upstream connections idle this long (default 60 s).
	IdleConnTimeout time.Duration
	// RootCAs verify tls and h2 upstreams when no BackendTLSPolicy names a CA (default: the
	// system roots).
	RootCAs *x509.CertPool
	// Destinations decides which addresses Backends may reach (nil: any, as in unit tests).
	Destinations *Destinations
	// Dialer opens every outbound connection (default NetDialer).
	Dialer Dialer
	// NewPicker makes each cluster's endpoint picker (default: PickerFor the Backend's
	// LoadBalancer, least request when it has none).
	NewPicker func(*ir.Backend) Picker
	// OnHealth, if set, is called with a backend's pickable (healthy and not ejected) and
	// total address counts whenever the pick set is rebuilt (for metrics).
	OnHealth func(backend string, healthy, total int)
	// OnOutlier, if set, is called when outlier detection ejects an address (ejected true) or
	// returns it (false), with the number of the backend's addresses now ejected (for metrics:
	// a counter of ejections and a gauge). It runs on the reporting request's goroutine or the
	// sweep's, outside the cluster's locks.
	OnOutlier func(backend string, ip netip.Addr, ejected bool, nowEjected int)
	// Now is the clock of outlier detection and slow start (default time.Now; tests inject
	// one).
	Now    func() time.Time
	Logger *slog.Logger
}

// Manager holds the clusters of the current snapshots.
type Manager struct {
	opts Options
	mu   sync.Mutex
	// clusters by backend name.
	clusters map[string]*Cluster
}

// NewManager returns an empty manager.
func NewManager(opts Options) *Manager {
	if opts.Resolver == nil {
		opts.Resolver = &DNSResolver{}
	}
	if opts.ResolveInterval == 0 {
		opts.ResolveInterval = 30 * time.Second
	}
	if opts.IdleConnTimeout == 0 {
		opts.IdleConnTimeout = 60 * time.Second
	}
	if opts.Dialer == nil {
		opts.Dialer = NetDialer{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NewPicker == nil {
		now := opts.Now
		opts.NewPicker = func(b *ir.Backend) Picker { return PickerFor(b.LoadBalancer, now) }
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Manager{opts: opts, clusters: map[string]*Cluster{}}
}

// Sync makes the cluster set match backends: new ones start (resolving and health checking),
// changed ones are replaced, unchanged ones are kept with their state, and the rest stop.
// probePorts gives each backend's health-check port (routes name ports, Backends do not).
// It returns the clusters by backend name.
func (m *Manager) Sync(backends []*ir.Backend, probePorts map[string]int32) map[string]*Cluster {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := make(map[string]*Cluster, len(backends))
	for _, b := range backends {
		if c, ok := m.clusters[b.Name]; ok && reflect.DeepEqual(c.spec, b) {
			c.port.Store(probePorts[b.Name])
			next[b.Name] = c
			continue
		}
		next[b.Name] = m.start(b, probePorts[b.Name], m.clusters[b.Name])
	}
	for name, c := range m.clusters {
		if next[name] != c {
			c.stop()
		}
	}
	m.clusters = next
	out := make(map[string]*Cluster, len(next))
	for k, v := range next {
		out[k] = v
	}
	return out
}

// Dial opens a connection for the gateway's own requests to a host no Backend names (an OIDC
// provider's endpoints, found in its discovery document): the host is resolved with the
// manager's Resolver and each address is dialed through its Dialer under the destination
// policy of scope (a name in the project's "project/namespace/name" form), as a Backend's
// endpoints are, so a document cannot point the gateway at an address its project may not
// reach.
func (m *Manager) Dial(ctx context.Context, scope, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		var res Resolver = net.DefaultResolver
		if m.opts.Resolver != nil {
			res = m.opts.Resolver
		}
		if ips, _, err = Lookup(ctx, res, scope, host); err != nil {
			return nil, err
		}
	}
	dialer := m.opts.Dialer
	if dialer == nil {
		dialer = NetDialer{}
	}
	var firstErr error
	for _, ip := range ips {
		c, err := dialer.DialContext(ctx, scope, network, net.JoinHostPort(ip.Unmap().String(), port), m.opts.Destinations.control(scope))
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("%s: no address", host)
	}
	return nil, firstErr
}

// RootCAs are the roots the gateway's own TLS requests verify against (nil: the system's).
func (m *Manager) RootCAs() *x509.CertPool { return m.opts.RootCAs }

// Cluster returns the current cluster of a backend (nil when none).
func (m *Manager) Cluster(name string) *Cluster {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.clusters[name]
}

// Clusters lists the clusters in use (for metrics read at scrape time).
func (m *Manager) Clusters() []*Cluster {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Cluster, 0, len(m.clusters))
	for _, c := range m.clusters {
		out = append(out, c)
	}
	return out
}

// Close stops every cluster.
func (m *Manager) Close() {
	m.Sync(nil, nil)
}

// Cluster is one backend: its endpoints' addresses and health, and its transport.
type Cluster struct {
	spec      *ir.Backend
	opts      Options
	log       *slog.Logger
	transport http.RoundTripper
	// h1 carries plain and TLS HTTP/1.1 exchanges (nil for h2 and h2c backends).
	h1     *h1Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.RWMutex
	// addrs are the resolved IPs of every endpoint, with health.
	addrs []*Address
	// rebuildMu serialises pick-set rebuilds (health loops, resolution and outlier detection
	// run concurrently), so a stale set is never published over a newer one.
	rebuildMu sync.Mutex
	// rebuilt: a pick set was published before, so addresses joining it now are new or
	// returning (slow start); the first set of a fresh cluster ramps nobody.
	rebuilt bool
	// healthy is the current pick set (healthy and not ejected), rebuilt when health,
	// ejection or resolution changes.
	healthy atomic.Pointer[[]*Address]
	picker  Picker
	// hash computes requests' consistent-hash keys (nil: the load balancer does not hash).
	hash *hashSource
	// outlier ejects failing addresses (nil: outlier detection off).
	outlier *outlierDetector
	// breaker caps the cluster's work (nil: no circuit breaker).
	breaker *breaker
	// probeTransport carries health probes: the transport without the breaker's connection
	// limit, so probes are never refused by it (the same as transport without a limit).
	probeTransport http.RoundTripper
	// port is the port health checks probe (set from the routes that use the cluster).
	port atomic.Int32
	// resolved is closed after the first resolution attempt of every endpoint.
	resolved chan struct{}
	// denied are resolved addresses the destination policy refused, with the reason.
	denied []string
}

// Denied lists the resolved addresses the destination policy refused, each with the reason
// (for the Backend's status).
func (c *Cluster) Denied() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.denied)
}

// DialContext opens a plain connection to one of this cluster's addresses through the Dialer,
// under the destination policy: HTTP transports, TCP and UDP relays and health probes all
// connect through it.
func (c *Cluster) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if d := time.Duration(c.spec.ConnectTimeout); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	return c.opts.Dialer.DialContext(ctx, c.spec.Name, network, addr, c.opts.Destinations.control(c.spec.Name))
}

// DialEndpoint opens a connection for a protocol the gateway itself speaks to the Backend
// (gRPC external authorization): to one of the cluster's addresses on port, picked as for a
// request, through DialContext; then, for tls and h2 Backends, a TLS handshake verified as the
// cluster's transport verifies (its roots or BackendTLSPolicy, SNI, client certificate),
// offering alpn.
func (c *Cluster) DialEndpoint(ctx context.Context, port int32, alpn []string) (net.Conn, error) {
	a, err := c.Pick(nil)
	if err != nil {
		return nil, err
	}
	conn, err := c.DialContext(ctx, "tcp", net.JoinHostPort(a.IP.String(), strconv.Itoa(int(port))))
	if err != nil || (c.spec.Protocol != "tls" && c.spec.Protocol != "h2") {
		return conn, err
	}
	cfg := upstreamTLS(c.spec, c.opts.RootCAs)
	cfg.NextProtos = alpn
	if cfg.ServerName == "" {
		cfg.ServerName = a.IP.String()
		if a.Hostname != "" {
			cfg.ServerName = a.Hostname
		}
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: conn.RemoteAddr(), Err: err}
	}
	return tc, nil
}

// Address is one resolved endpoint address.
type Address struct {
	IP       netip.Addr
	Hostname string // the FQDN it came from, or ""
	healthy  atomic.Bool
	hostport atomic.Pointer[hostPort]
	// counts for thresholds
	okRun, failRun int
	// inflight counts attempts between Begin and End (least request compares them).
	inflight atomic.Int64
	// upSince is when the address last joined the pick set (unix ns; slow start).
	upSince atomic.Int64
	// inSet: the address is in the published pick set (under Cluster.rebuildMu).
	inSet bool
	// Outlier detection: consecutive failure runs (reported concurrently), the ejection flag
	// read by rebuilds, and the ejection bookkeeping under outlierDetector.mu.
	run5xx, runGateway atomic.Int32
	ejected            atomic.Bool
	ejectedUntil       int64 // unix ns
	timesEjected       int
	decayFrom          int64 // unix ns since which the address served without a new ejection
}

// Begin records that an attempt was sent to this address; End must follow exactly once when
// the attempt is over (its response body closed, or it failed). The count of attempts in
// between is what LeastRequest compares, so every attempt the proxy makes (retries, mirrors
// and TCP relays included) should be bracketed. No allocation, one atomic add.
func (a *Address) Begin() { a.inflight.Add(1) }

// End records that an attempt begun with Begin is over.
func (a *Address) End() { a.inflight.Add(-1) }

// InFlight is the number of attempts begun and not ended.
func (a *Address) InFlight() int64 { return a.inflight.Load() }

// Ejected reports whether outlier detection holds the address out of the pick set.
func (a *Address) Ejected() bool { return a.ejected.Load() }

// HostPort is "ip:port", cached for the last port asked (routes name one port per backend,
// so this is built once rather than per request).
func (a *Address) HostPort(port int32) string {
	if hp := a.hostport.Load(); hp != nil && hp.port == port {
		return hp.s
	}
	hp := &hostPort{port: port, s: net.JoinHostPort(a.IP.String(), strconv.Itoa(int(port)))}
	a.hostport.Store(hp)
	return hp.s
}

type hostPort struct {
	port int32
	s    string
}

// Healthy reports the address's health.
func (a *Address) Healthy() bool { return a.healthy.Load() }

// start runs a cluster for b. When it replaces prev (the Backend changed) with the same
// endpoints, the resolved addresses and their health carry over, so a change of, say, the
// health check or TLS settings does not send traffic to an endpoint known to be down, nor wait
// for a first resolution.
func (m *Manager) start(b *ir.Backend, port int32, prev *Cluster) *Cluster {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{spec: b, opts: m.opts, log: m.opts.Logger.With("backend", b.Name), ctx: ctx, cancel: cancel, resolved: make(chan struct{}), picker: m.opts.NewPicker(b)}
	c.port.Store(port)
	if hashes(b.LoadBalancer) {
		c.hash = newHashSource(b.LoadBalancer.Hash)
	}
	if b.Outlier != nil {
		c.outlier = newOutlierDetector(b.Outlier)
	}
	if b.CircuitBreaker != nil {
		var st *breakerState
		if prev != nil && prev.breaker != nil {
			st = prev.breaker.st // counts of work in flight carry over
		}
		c.breaker = newBreaker(b.CircuitBreaker, st)
	}
	var dial func(ctx context.Context, network, addr string) (net.Conn, error)
	c.transport, dial = newTransport(b, m.opts, c.hostnameOf, c.DialContext)
	c.probeTransport = c.transport
	if c.breaker != nil && c.breaker.maxConns > 0 {
		// Connections of the transport (HTTP/2, upgrades) count against the limit; health
		// probes keep a pool of their own outside it.
		c.transport, _ = newTransport(b, m.opts, c.hostnameOf, c.breaker.countingDial(c.DialContext))
	}
	if b.Protocol != "h2" && b.Protocol != "h2c" {
		c.h1 = newH1Client(dial, idleConnTimeout(b, m.opts))
		c.h1.limit(c.breaker)
	}
	empty := []*Address{}
	c.healthy.Store(&empty)
	if prev != nil && reflect.DeepEqual(prev.spec.Endpoints, b.Endpoints) {
		prevAddrs := prev.Addresses()
		// Lock order: rebuildMu before outlierDetector.mu (ejections release the latter
		// before rebuilding).
		prev.rebuildMu.Lock()
		if prev.outlier != nil {
			prev.outlier.mu.Lock()
		}
		for _, a := range prevAddrs {
			na := &Address{IP: a.IP, Hostname: a.Hostname, inSet: a.inSet}
			na.healthy.Store(a.Healthy())
			na.upSince.Store(a.upSince.Load())
			if c.outlier != nil && a.ejected.Load() {
				// An ejection outlives a policy change that keeps outlier detection.
				na.ejected.Store(true)
				na.ejectedUntil, na.timesEjected, na.decayFrom = a.ejectedUntil, a.timesEjected, a.decayFrom
			}
			c.addrs = append(c.addrs, na)
		}
		if prev.outlier != nil {
			prev.outlier.mu.Unlock()
		}
		prev.rebuildMu.Unlock()
		c.rebuilt = true
		c.rebuildHealthy()
	}
	c.wg.Add(1)
	go c.resolveLoop()
	if c.outlier != nil {
		c.wg.Add(1)
		go c.sweepLoop()
	}
	return c
}

func (c *Cluster) stop() {
	c.cancel()
	c.wg.Wait()
	for _, rt := range []http.RoundTripper{c.transport, c.probeTransport} {
		if t, ok := rt.(interface{ CloseIdleConnections() }); ok {
			t.CloseIdleConnections()
		}
	}
	if c.h1 != nil {
		c.h1.CloseIdleConnections()
	}
}

// Spec is the backend this cluster serves.
func (c *Cluster) Spec() *ir.Backend { return c.spec }

// Scheme is the URL scheme requests to this cluster use: https for tls and h2 backends.
func (c *Cluster) Scheme() string {
	if p := c.spec.Protocol; p == "tls" || p == "h2" {
		return "https"
	}
	return "http"
}

// Transport sends requests to this cluster's endpoints, protocol upgrades (WebSocket)
// included.
func (c *Cluster) Transport() http.RoundTripper { return c.transport }

// HTTP1 reports whether Client is the cluster's own HTTP/1.1 client, which honours a request
// context's deadline on the connection itself.
func (c *Cluster) HTTP1() bool { return c.h1 != nil }

// Client is the fastest round tripper for requests that are not upgrades: the cluster's own
// HTTP/1.1 client for plain and TLS backends, the full transport for HTTP/2 ones.
func (c *Cluster) Client() http.RoundTripper {
	if c.h1 != nil {
		return c.h1
	}
	return c.transport
}

// WaitResolved blocks until the first resolution finished or ctx ends.
func (c *Cluster) WaitResolved(ctx context.Context) {
	select {
	case <-c.resolved:
	case <-ctx.Done():
	}
}

// Pick returns a healthy address chosen by the cluster's Picker for a request without a hash
// key, avoiding those in exclude (already tried by this request) when it can.
func (c *Cluster) Pick(exclude []netip.Addr) (*Address, error) {
	return c.PickKey(exclude, Key{})
}

// PickKey returns a healthy, non-ejected address chosen by the cluster's Picker for a request
// with hash key key (from HashKey or ConnKey; the zero Key when it has none), avoiding those
// in exclude (already tried by this request) when it can: a retry's key is rehashed, so a
// consistent-hash cluster sends it to another endpoint, the same one on every instance.
func (c *Cluster) PickKey(exclude []netip.Addr, key Key) (*Address, error) {
	list := *c.healthy.Load()
	if len(list) == 0 {
		return nil, ErrNoHealthyEndpoint
	}
	a := c.picker.Pick(list, key)
	for i := 1; i < len(list) && slices.Contains(exclude, a.IP); i++ {
		if key.Set {
			key.Hash = mix64(key.Hash + uint64(i))
		}
		a = c.picker.Pick(list, key)
	}
	if len(exclude) > 0 && slices.Contains(exclude, a.IP) {
		// The picker kept choosing tried endpoints (a random pick among few): a retry goes to
		// an untried one whenever there is one.
		off := int(a.inflight.Load()) + len(exclude)
		for i := range list {
			if b := list[(off+i)%len(list)]; !slices.Contains(exclude, b.IP) {
				return b, nil
			}
		}
	}
	return a, nil
}

// Untried reports whether the pick set holds an address not in exclude: whether PickKey
// would send a retry to an endpoint this request has not tried yet.
func (c *Cluster) Untried(exclude []netip.Addr) bool {
	for _, a := range *c.healthy.Load() {
		if !slices.Contains(exclude, a.IP) {
			return true
		}
	}
	return false
}

// Addresses returns a copy of the resolved addresses (for status and tests).
func (c *Cluster) Addresses() []*Address {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.addrs)
}

// rebuildHealthy publishes the pick set: the addresses the health check holds healthy that
// outlier detection has not ejected. Should ejections empty it while some ejected address is
// healthy, those are picked rather than none (ejection never takes the last endpoint out).
// Addresses joining the set are stamped for slow start, and the Picker prepares its tables
// before the set is published.
func (c *Cluster) rebuildHealthy() {
	c.rebuildMu.Lock()
	defer c.rebuildMu.Unlock()
	now := c.opts.Now().UnixNano()
	c.mu.RLock()
	list := make([]*Address, 0, len(c.addrs))
	var standby []*Address
	for _, a := range c.addrs {
		if a.healthy.Load() {
			if a.ejected.Load() {
				standby = append(standby, a)
			} else {
				list = append(list, a)
			}
		}
	}
	if len(list) == 0 {
		list = append(list, standby...)
	}
	for _, a := range list {
		if c.rebuilt && !a.inSet {
			a.upSince.Store(now) // new or returning: slow start
		}
	}
	for _, a := range c.addrs {
		a.inSet = false
	}
	for _, a := range list {
		a.inSet = true
	}
	total := len(c.addrs)
	c.mu.RUnlock()
	c.rebuilt = true
	prev := *c.healthy.Load()
	if !slices.Equal(prev, list) {
		if p, ok := c.picker.(Preparer); ok {
			p.Prepare(list)
		}
		c.healthy.Store(&list)
	}
	if c.opts.OnHealth != nil {
		c.opts.OnHealth(c.spec.Name, len(list), total)
	}
}

// resolveLoop resolves FQDN endpoints now and every ResolveInterval, keeping the previous
// addresses of a name whose lookup fails, and (re)starts health checks for new addresses.
func (c *Cluster) resolveLoop() {
	defer c.wg.Done()
	checkers := map[netip.Addr]context.CancelFunc{}
	defer func() {
		for _, cancel := range checkers {
			cancel()
		}
	}()
	first := true
	for {
		ttl := c.resolveOnce(checkers)
		if first {
			close(c.resolved)
			first = false
		}
		wait := c.opts.ResolveInterval
		if ttl > 0 {
			wait = min(max(ttl, MinTTL), c.opts.ResolveInterval)
		}
		t := time.NewTimer(wait)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// resolveOnce resolves every endpoint; it returns the smallest DNS TTL seen (0 if unknown).
func (c *Cluster) resolveOnce(checkers map[netip.Addr]context.CancelFunc) time.Duration {
	c.mu.RLock()
	old := map[netip.Addr]*Address{}
	for _, a := range c.addrs {
		old[a.IP] = a
	}
	c.mu.RUnlock()
	var next []*Address
	var denied []string
	var minTTL time.Duration
	seen := map[netip.Addr]bool{}
	add := func(ip netip.Addr, host string) {
		ip = ip.Unmap()
		if seen[ip] {
			return
		}
		seen[ip] = true
		if err := c.opts.Destinations.CheckAddr(c.spec.Name, ip); err != nil {
			denied = append(denied, err.Error())
			return
		}
		if a, ok := old[ip]; ok {
			next = append(next, a)
			return
		}
		a := &Address{IP: ip, Hostname: host}
		// Without health checks an address is healthy; with them it starts healthy too, so a
		// fresh backend serves at once, and the first failures take it out.
		a.healthy.Store(true)
		next = append(next, a)
	}
	for _, ep := range c.spec.Endpoints {
		if ep.IP != "" {
			if ip, err := netip.ParseAddr(ep.IP); err == nil {
				add(ip, "")
			}
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
		ips, ttl, err := Lookup(ctx, c.opts.Resolver, c.spec.Name, ep.FQDN)
		if err == nil && ttl > 0 && (minTTL == 0 || ttl < minTTL) {
			minTTL = ttl
		}
		cancel()
		if err != nil || len(ips) == 0 {
			if c.ctx.Err() == nil {
				c.log.Warn("resolve endpoint failed; keeping previous addresses", "fqdn", ep.FQDN, "err", err)
			}
			for _, a := range old {
				if a.Hostname == ep.FQDN {
					add(a.IP, a.Hostname)
				}
			}
			continue
		}
		for _, ip := range ips {
			add(ip, ep.FQDN)
		}
	}
	c.mu.Lock()
	if len(denied) > 0 && !slices.Equal(denied, c.denied) {
		c.log.Warn("endpoint addresses refused by the destination policy", "addresses", denied)
	}
	c.addrs, c.denied = next, denied
	c.mu.Unlock()
	c.rebuildHealthy()
	if hc := c.spec.HealthCheck; hc != nil {
		for _, a := range next {
			if _, ok := checkers[a.IP]; !ok {
				ctx, cancel := context.WithCancel(c.ctx)
				checkers[a.IP] = cancel
				c.wg.Add(1)
				go c.healthLoop(ctx, a, hc)
			}
		}
		for ip, cancel := range checkers {
			if !seen[ip] {
				cancel()
				delete(checkers, ip)
			}
		}
	}
	return minTTL
}

// hostnameOf returns the FQDN an address was resolved from ("" for static IPs).
func (c *Cluster) hostnameOf(ip netip.Addr) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, a := range c.addrs {
		if a.IP == ip {
			return a.Hostname
		}
	}
	return ""
}

// newTransport builds the pooled transport for a backend's protocol. TLS connections present
// the endpoint's FQDN (or the BackendTLSPolicy hostname) as SNI and verify against it, though
// the request URL names the resolved IP.
// It also returns the dial function (TLS included) for the cluster's HTTP/1.1 client.
func newTransport(b *ir.Backend, opts Options, hostnameOf func(netip.Addr) string, dialContext func(context.Context, string, string) (net.Conn, error)) (http.RoundTripper, func(context.Context, string, string) (net.Conn, error)) {
	t := &http.Transport{
		DialContext:           dialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       idleConnTimeout(b, opts),
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // bodies pass through as the upstream sent them
	}
	p := new(http.Protocols)
	var nextProtos []string
	switch b.Protocol {
	case "h2c":
		p.SetUnencryptedHTTP2(true)
	case "h2":
		p.SetHTTP2(true)
		nextProtos = []string{"h2"}
	case "tls":
		p.SetHTTP1(true)
		nextProtos = []string{"http/1.1"}
	default:
		p.SetHTTP1(true)
	}
	t.Protocols = p
	dial := dialContext
	if nextProtos != nil {
		base := upstreamTLS(b, opts.RootCAs)
		base.NextProtos = nextProtos
		connect := time.Duration(b.ConnectTimeout)
		t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if connect > 0 { // the handshake counts toward the connect timeout
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, connect)
				defer cancel()
			}
			conn, err := dialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cfg := base.Clone()
			if cfg.ServerName == "" {
				host, _, _ := net.SplitHostPort(addr)
				cfg.ServerName = host
				if ip, err := netip.ParseAddr(host); err == nil {
					if name := hostnameOf(ip.Unmap()); name != "" {
						cfg.ServerName = name
					}
				}
			}
			tc := tls.Client(conn, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				// The connection was not opened: a handshake failure (or its timeout) is a
				// connect failure, retried as one and never a request timeout.
				return nil, &net.OpError{Op: "dial", Net: network, Addr: conn.RemoteAddr(), Err: err}
			}
			return tc, nil
		}
		dial = t.DialTLSContext
	}
	return t, dial
}

// idleConnTimeout is how long a backend's pooled connections may idle: its TrafficPolicy's
// timeouts.connectionIdle, else the data plane's default.
func idleConnTimeout(b *ir.Backend, opts Options) time.Duration {
	if d := time.Duration(b.ConnectionIdle); d > 0 {
		return d
	}
	return opts.IdleConnTimeout
}

func upstreamTLS(b *ir.Backend, roots *x509.CertPool) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	if b.TLS != nil {
		cfg.ServerName = b.TLS.ServerName
		if len(b.TLS.CAPEM) > 0 {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(b.TLS.CAPEM)
			cfg.RootCAs = pool
		}
		if cc := b.TLS.ClientCertificate; cc != nil {
			pair, err := tls.X509KeyPair(cc.CertPEM, cc.KeyPEM)
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if err != nil {
					return nil, fmt.Errorf("client certificate %s: %w", cc.Name, err)
				}
				return &pair, nil
			}
		}
		if sans := b.TLS.SubjectAltNames; len(sans) > 0 {
			// The chain is still verified against the roots; only the name check changes, so
			// crypto/tls's own hostname check is replaced by VerifyConnection.
			roots := cfg.RootCAs
			cfg.InsecureSkipVerify = true
			cfg.VerifyConnection = func(cs tls.ConnectionState) error { return verifySANs(cs, roots, sans) }
		}
	}
	return cfg
}

// verifySANs verifies the peer's chain against roots (nil: the system's) and that the leaf
// carries one of sans.
func verifySANs(cs tls.ConnectionState, roots *x509.CertPool, sans []ir.SubjectAltName) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("upstream sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
		return err
	}
	for _, san := range sans {
		if san.Hostname != "" && leaf.VerifyHostname(san.Hostname) == nil {
			return nil
		}
		if san.URI != "" && slices.ContainsFunc(leaf.URIs, func(u *url.URL) bool { return u.String() == san.URI }) {
			return nil
		}
	}
	return fmt.Errorf("upstream certificate carries none of the subject alternative names %v", sans)
}

// String describes the cluster for logs.
func (c *Cluster) String() string { return fmt.Sprintf("cluster %s", c.spec.Name) }
