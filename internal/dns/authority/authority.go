// Package authority is the authoritative DNS server: it answers for the zones of a zone.Set
// over UDP and TCP on one port, with EDNS0 (RFC 6891), truncation and TCP fallback, negative
// answers with the SOA (RFC 2308), response-rate limiting per source prefix, and zone
// transfers (AXFR, and IXFR answered with the whole zone as RFC 1995 §4 allows) and NOTIFY
// (RFC 1996) to each zone's secondaries, signed with TSIG (RFC 8945) when they have a key.
//
// A plain query (one question, no TSIG) is answered from a cache of packed responses keyed by
// name, type, class and the client's buffer size, kept per zone set and dropped whole when a
// new set is swapped in (Update); a hit costs a header parse, a copy and two byte patches
// (the ID and the client's spelling of the name), with no allocation.
package authority

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"

	"apoxy.dev/apoxy/internal/dns/zone"
)

// Sizes of responses.
const (
	// ourUDPSize is the EDNS0 buffer size advertised and the largest UDP response sent: the
	// DNS flag day 2020 value, below common path MTUs, so answers are not fragmented.
	ourUDPSize = 1232
	// plainUDPSize is the limit for a client without EDNS0 (RFC 1035).
	plainUDPSize = 512
	maxTCPSize   = 65535
)

// Options configure a Server.
type Options struct {
	// RateLimit is how many UDP responses per second one source prefix (an IPv4 /24, an IPv6
	// /56) gets before responses are dropped or slipped; 0 turns rate limiting off.
	RateLimit int
	// Slip sends every Slip-th limited response as an empty truncated answer, so that a
	// legitimate client behind a spoofed flood retries over TCP; 0 drops them all (default 2).
	Slip int
	// CacheEntries bounds the response cache (default 65536).
	CacheEntries int
	Logger       *slog.Logger
}

// Secondary is a name server that copies a zone.
type Secondary struct {
	// Addr receives NOTIFYs; transfers are allowed from its IP.
	Addr netip.AddrPort
	// Key signs NOTIFYs and transfers; when set, an unsigned transfer request is refused.
	Key *TSIGKey
}

// TSIGKey is a TSIG shared secret.
type TSIGKey struct {
	// Name is the key's name (a DNS name, as both ends configure it).
	Name string
	// Algorithm is dns.HmacSHA256 (the default when empty), dns.HmacSHA512 or dns.HmacSHA1.
	Algorithm string
	// Secret is base64.
	Secret string
}

func (k *TSIGKey) algorithm() string {
	if k.Algorithm == "" {
		return dns.HmacSHA256
	}
	return dns.Fqdn(k.Algorithm)
}

// state is one generation of served data: what Update swaps in whole.
type state struct {
	set   *zone.Set
	cache *cache
	// secondaries by zone origin (canonical).
	secondaries map[string][]Secondary
	// keys by canonical key name.
	keys map[string]*TSIGKey
}

// Server answers DNS queries for its zones.
type Server struct {
	opts    Options
	log     *slog.Logger
	state   atomic.Pointer[state]
	rrl     *limiter
	metrics *Metrics
	notify  *notifier

	mu      sync.Mutex
	udp     []net.PacketConn
	tcp     []net.Listener
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
	closed  bool
	closeCh chan struct{}
}

// New makes a server with no zones: it refuses every query until Update.
func New(opts Options) *Server {
	if opts.Slip == 0 {
		opts.Slip = 2
	}
	if opts.Slip < 0 {
		opts.Slip = 0
	}
	if opts.CacheEntries <= 0 {
		opts.CacheEntries = 65536
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts, log: opts.Logger, metrics: newMetrics(), conns: map[net.Conn]struct{}{}, closeCh: make(chan struct{})}
	if opts.RateLimit > 0 {
		s.rrl = newLimiter(opts.RateLimit, opts.Slip)
	}
	s.notify = newNotifier(s.log, s.metrics)
	s.state.Store(&state{set: zone.NewSet(), cache: newCache(opts.CacheEntries)})
	return s
}

// Metrics is the server's counters, to register with a Prometheus registry.
func (s *Server) Metrics() *Metrics { return s.metrics }

// Update swaps in a new set of zones and their secondaries (by zone origin), at once for
// every later query; the secondaries of each zone whose serial moved are sent a NOTIFY.
func (s *Server) Update(set *zone.Set, secondaries map[string][]Secondary) {
	st := &state{set: set, cache: newCache(s.opts.CacheEntries), secondaries: map[string][]Secondary{}, keys: map[string]*TSIGKey{}}
	for origin, secs := range secondaries {
		st.secondaries[zone.Canonical(origin)] = secs
		for _, sec := range secs {
			if sec.Key != nil {
				st.keys[zone.Canonical(sec.Key.Name)] = sec.Key
			}
		}
	}
	old := s.state.Swap(st)
	for _, z := range set.Zones() {
		if oz := old.set.Zone(z.Origin()); oz != nil && oz.Serial() == z.Serial() {
			continue
		}
		for _, sec := range st.secondaries[z.Origin()] {
			s.notify.send(z.Origin(), z.SOA(), sec)
		}
	}
}

// Zones returns the zone set served now.
func (s *Server) Zones() *zone.Set { return s.state.Load().set }

// Listen opens UDP and TCP on one address (port 0: the same free port for both) and serves
// them until Close. It returns the address bound.
func (s *Server) Listen(addr string) (netip.AddrPort, error) {
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return netip.AddrPort{}, err
		}
		bound := pc.LocalAddr().(*net.UDPAddr).AddrPort()
		ln, err := net.Listen("tcp", bound.String())
		if err != nil {
			pc.Close()
			// Port 0 picked a UDP port whose TCP twin is taken: try another.
			if _, port, _ := net.SplitHostPort(addr); port == "0" && attempt < 10 {
				continue
			}
			return netip.AddrPort{}, err
		}
		if err := s.Serve(pc, ln); err != nil {
			pc.Close()
			ln.Close()
			return netip.AddrPort{}, err
		}
		return bound, nil
	}
}

// Serve answers on pc (UDP) and ln (TCP, may be nil) until Close.
func (s *Server) Serve(pc net.PacketConn, ln net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("dns: server closed")
	}
	if pc != nil {
		s.udp = append(s.udp, pc)
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.serveUDP(pc) }()
	}
	if ln != nil {
		s.tcp = append(s.tcp, ln)
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.serveTCP(ln) }()
	}
	return nil
}

// Close stops serving: listeners close, TCP connections are closed after the message they
// are writing, and pending NOTIFYs are abandoned.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closeCh)
		for _, pc := range s.udp {
			pc.Close()
		}
		for _, ln := range s.tcp {
			ln.Close()
		}
		for c := range s.conns {
			c.Close()
		}
	}
	s.mu.Unlock()
	s.notify.close()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
