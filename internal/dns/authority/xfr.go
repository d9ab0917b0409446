package authority

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"

	"apoxy.dev/apoxy/internal/dns/zone"
)

// envelopeBytes is the size a transfer's messages are filled to.
const envelopeBytes = 16 << 10

// transfer answers an AXFR or IXFR on a TCP connection: the whole zone, SOA first and last,
// in messages of about 16 KiB, to a secondary of the zone only, signed when it has a key (and
// refused unsigned then). An IXFR whose serial is current gets the SOA alone; any other IXFR
// gets the whole zone, which RFC 1995 §4 allows when no history is kept. It reports whether
// the connection may go on.
func (s *Server) transfer(c net.Conn, req []byte, src netip.Addr) bool {
	st := s.state.Load()
	m := new(dns.Msg)
	if err := m.Unpack(req); err != nil || len(m.Question) != 1 {
		return false
	}
	var key *TSIGKey
	if t := m.IsTsig(); t != nil {
		k, fail := st.checkTSIG(req, t)
		if fail != nil {
			s.metrics.transfers[1].Add(1)
			b, _ := fail.Pack()
			return writeTCP(c, b) == nil
		}
		key = k
	}
	reply := func(r *dns.Msg, prevMAC string, timersOnly bool) (string, error) {
		var b []byte
		var mac string
		var err error
		if key != nil {
			r.SetTsig(key.Name, key.algorithm(), 300, time.Now().Unix())
			b, mac, err = dns.TsigGenerate(r, key.Secret, prevMAC, timersOnly)
		} else {
			b, err = r.Pack()
		}
		if err != nil {
			return "", err
		}
		return mac, writeTCP(c, b)
	}
	requestMAC := ""
	if t := m.IsTsig(); t != nil {
		requestMAC = t.MAC
	}
	refuse := func(rcode int) bool {
		s.metrics.transfers[1].Add(1)
		s.metrics.count(m.Question[0].Qtype, rcode, TCP)
		r := new(dns.Msg)
		r.SetRcode(m, rcode)
		_, err := reply(r, requestMAC, false)
		return err == nil
	}
	z := st.set.Zone(m.Question[0].Name)
	if z == nil {
		return refuse(dns.RcodeNotAuth)
	}
	var sec *Secondary
	for i, cand := range st.secondaries[z.Origin()] {
		if cand.Addr.Addr().Unmap() == src.Unmap() {
			sec = &st.secondaries[z.Origin()][i]
			break
		}
	}
	if sec == nil || (sec.Key != nil && (key == nil || zone.Canonical(key.Name) != zone.Canonical(sec.Key.Name))) {
		s.log.Warn("dns: zone transfer refused", "zone", z.Origin(), "from", src, "signed", key != nil)
		return refuse(dns.RcodeRefused)
	}
	s.metrics.transfers[0].Add(1)
	s.metrics.count(m.Question[0].Qtype, dns.RcodeSuccess, TCP)
	if m.Question[0].Qtype == dns.TypeIXFR && len(m.Ns) == 1 {
		if soa, ok := m.Ns[0].(*dns.SOA); ok && soa.Serial == z.Serial() {
			r := new(dns.Msg)
			r.SetReply(m)
			r.Authoritative = true
			r.Answer = []dns.RR{z.SOA()}
			_, err := reply(r, requestMAC, false)
			return err == nil
		}
	}
	all := append(z.All(), z.SOA())
	mac, first := requestMAC, true
	for len(all) > 0 {
		r := new(dns.Msg)
		r.SetReply(m)
		r.Authoritative = true
		r.Compress = true
		n := 0
		for n < len(all) {
			r.Answer = all[:n+1]
			if n > 0 && r.Len() > envelopeBytes {
				r.Answer = all[:n]
				break
			}
			n++
		}
		all = all[len(r.Answer):]
		var err error
		if mac, err = reply(r, mac, !first); err != nil {
			return false
		}
		first = false
	}
	return true
}

// notifier sends NOTIFY messages (RFC 1996) to secondaries, retrying each up to five times
// with backoff until it is acknowledged; a newer change to the same zone and secondary
// replaces a pending one.
type notifier struct {
	log     interface{ Warn(string, ...any) }
	metrics *Metrics
	mu      sync.Mutex
	pending map[string]context.CancelFunc
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

func newNotifier(log interface{ Warn(string, ...any) }, m *Metrics) *notifier {
	ctx, stop := context.WithCancel(context.Background())
	return &notifier{log: log, metrics: m, pending: map[string]context.CancelFunc{}, ctx: ctx, stop: stop}
}

func (n *notifier) send(origin string, soa *dns.SOA, sec Secondary) {
	key := origin + "|" + sec.Addr.String()
	n.mu.Lock()
	if cancel := n.pending[key]; cancel != nil {
		cancel()
	}
	ctx, cancel := context.WithCancel(n.ctx)
	n.pending[key] = cancel
	n.wg.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		defer cancel()
		m := new(dns.Msg)
		m.SetNotify(origin)
		m.Answer = []dns.RR{soa}
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		if sec.Key != nil {
			c.TsigSecret = map[string]string{dns.Fqdn(sec.Key.Name): sec.Key.Secret}
		}
		delay := time.Second
		for attempt := 1; ; attempt++ {
			msg := m.Copy()
			if sec.Key != nil {
				msg.SetTsig(dns.Fqdn(sec.Key.Name), sec.Key.algorithm(), 300, time.Now().Unix())
			}
			r, _, err := c.ExchangeContext(ctx, msg, sec.Addr.String())
			if ctx.Err() != nil {
				return // replaced or closed
			}
			if err == nil && r.Rcode == dns.RcodeSuccess {
				n.metrics.notifies[0].Add(1)
				n.mu.Lock()
				delete(n.pending, key)
				n.mu.Unlock()
				return
			}
			if attempt == 5 {
				n.metrics.notifies[1].Add(1)
				why := "no answer"
				if err != nil {
					why = err.Error()
				} else {
					why = dns.RcodeToString[r.Rcode]
				}
				n.log.Warn("dns: a secondary did not acknowledge NOTIFY", "zone", origin, "secondary", sec.Addr.String(), "error", why)
				return
			}
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			delay *= 2
		}
	}()
}

func (n *notifier) close() {
	n.stop()
	n.wg.Wait()
}
