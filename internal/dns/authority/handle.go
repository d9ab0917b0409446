package authority

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"apoxy.dev/apoxy/internal/dns/zone"
)

// Transport is how a query came.
type Transport int

// Transports.
const (
	UDP Transport = iota
	TCP
)

// plainQuery is what the cache needs of a query: set by parseQuery for a message that is one
// question, optionally with an EDNS0 OPT record of version 0, and nothing else.
type plainQuery struct {
	qnameEnd int // offset just past the question's name
	qtype    uint16
	size     int // the response size limit
}

// parseQuery reads a plain query and appends its cache key to key: the name in lower case
// (wire form), type, class, EDNS flag and size limit. ok is false for anything else (a
// response, another opcode, several questions, records other than one OPT, a malformed or
// compressed name, trailing bytes), which then takes the full path.
func parseQuery(b []byte, tr Transport, key []byte) (q plainQuery, _ []byte, ok bool) {
	if len(b) < 12+5 {
		return q, key, false
	}
	if b[2]&0xF8 != 0 { // QR set, or an opcode other than QUERY
		return q, key, false
	}
	qd, an, ns, ar := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:]), binary.BigEndian.Uint16(b[8:]), binary.BigEndian.Uint16(b[10:])
	if qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return q, key, false
	}
	off := 12
	for {
		if off >= len(b) {
			return q, key, false
		}
		l := int(b[off])
		if l == 0 {
			key = append(key, 0)
			off++
			break
		}
		if l > 63 || off+1+l > len(b) || off+1+l-12 > 254 {
			return q, key, false // a compression pointer, or too long
		}
		key = append(key, byte(l))
		for _, c := range b[off+1 : off+1+l] {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			key = append(key, c)
		}
		off += 1 + l
	}
	q.qnameEnd = off
	if off+4 > len(b) {
		return q, key, false
	}
	q.qtype = binary.BigEndian.Uint16(b[off:])
	qclass := binary.BigEndian.Uint16(b[off+2:])
	switch q.qtype {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeANY, dns.TypeOPT:
		return q, key, false
	}
	if qclass != dns.ClassINET {
		return q, key, false
	}
	off += 4
	key = append(key, b[q.qnameEnd:off]...)
	edns := byte(0)
	q.size = plainUDPSize
	if ar == 1 {
		// An OPT record: root name, type 41, class = buffer size, TTL = ext rcode, version,
		// flags; then its options, which must end the message.
		if off+11 > len(b) || b[off] != 0 || binary.BigEndian.Uint16(b[off+1:]) != dns.TypeOPT {
			return q, key, false
		}
		if b[off+6] != 0 { // version
			return q, key, false
		}
		rdlen := int(binary.BigEndian.Uint16(b[off+9:]))
		if off+11+rdlen != len(b) {
			return q, key, false
		}
		edns = 1
		q.size = min(max(int(binary.BigEndian.Uint16(b[off+3:])), plainUDPSize), ourUDPSize)
		off += 11 + rdlen
	}
	if off != len(b) {
		return q, key, false
	}
	if tr == TCP {
		q.size = maxTCPSize
	}
	key = append(key, edns, byte(q.size>>8), byte(q.size))
	return q, key, true
}

// Handle answers one message that needs a single response (not a zone transfer) from src,
// appending the response to out; nil means no response at all (the message was a response,
// or too short to answer). It never panics on any input.
func (s *Server) Handle(req []byte, src netip.Addr, tr Transport, out []byte) []byte {
	st := s.state.Load()
	var kb [300]byte
	q, key, ok := parseQuery(req, tr, kb[:0])
	if ok {
		if cached := st.cache.get(key); cached != nil {
			out = append(out[:0], cached...)
			patch(out, req, q.qnameEnd)
			s.metrics.count(q.qtype, int(out[3]&0x0F), tr)
			return out
		}
	}
	resp, rcode, qtype := s.answer(st, req, src, tr)
	if resp == nil {
		s.metrics.malformed.Add(1)
		return nil
	}
	s.metrics.count(qtype, rcode, tr)
	out = append(out[:0], resp...)
	if ok && rcode != dns.RcodeFormatError && rcode != dns.RcodeServerFailure {
		c := append([]byte(nil), resp...)
		c[0], c[1] = 0, 0
		c[2] &^= 0x01 // RD
		c[3] &^= 0x10 // CD
		st.cache.put(key, c)
	}
	return out
}

// patch makes a cached response the answer to req: its ID, RD and CD bits, and the question's
// name as the client spelled it (resolvers may randomise case, draft-vixie-dnsext-dns0x20).
func patch(resp, req []byte, qnameEnd int) {
	resp[0], resp[1] = req[0], req[1]
	resp[2] |= req[2] & 0x01
	resp[3] |= req[3] & 0x10
	copy(resp[12:qnameEnd], req[12:qnameEnd])
}

// answer is the full path: unpack, check, look up, pack. It returns the packed response (nil
// for no response), its rcode and the question's type.
func (s *Server) answer(st *state, req []byte, src netip.Addr, tr Transport) ([]byte, int, uint16) {
	m := new(dns.Msg)
	if err := m.Unpack(req); err != nil {
		return formErr(req)
	}
	if m.Response {
		return nil, 0, 0
	}
	var key *TSIGKey
	if t := m.IsTsig(); t != nil {
		k, msg := st.checkTSIG(req, t)
		if msg != nil {
			b, _ := msg.Pack()
			return b, msg.Rcode, 0
		}
		key = k
	}
	r := new(dns.Msg)
	r.SetReply(m)
	r.RecursionAvailable = false
	qtype := uint16(0)
	if len(m.Question) > 0 {
		qtype = m.Question[0].Qtype
	}
	size := plainUDPSize
	opt := m.IsEdns0()
	if opt != nil {
		size = min(max(int(opt.UDPSize()), plainUDPSize), ourUDPSize)
	}
	if tr == TCP {
		size = maxTCPSize
	}
	switch {
	case opt != nil && opt.Version() != 0:
		r.SetRcode(m, dns.RcodeBadVers)
	case m.Opcode != dns.OpcodeQuery:
		r.SetRcode(m, dns.RcodeNotImplemented)
	case len(m.Question) != 1:
		r.SetRcode(m, dns.RcodeFormatError)
	case m.Question[0].Qclass != dns.ClassINET:
		r.SetRcode(m, dns.RcodeRefused)
	case qtype == dns.TypeAXFR || qtype == dns.TypeIXFR:
		z := st.set.Zone(m.Question[0].Name)
		if z == nil || tr == TCP {
			// Over TCP a transfer is the connection's job (serveTCP); here it is refused.
			r.SetRcode(m, dns.RcodeRefused)
		} else if qtype == dns.TypeIXFR {
			// Over UDP an IXFR gets the current SOA: "ask again over TCP" (RFC 1995 §2).
			r.Authoritative = true
			r.Answer = []dns.RR{z.SOA()}
		} else {
			r.SetRcode(m, dns.RcodeRefused)
		}
	default:
		a := st.set.Lookup(m.Question[0].Name, qtype)
		r.Rcode = a.Rcode
		r.Authoritative = a.Authoritative
		if a.Zone != nil && qtype == dns.TypeANY && tr == UDP {
			// RFC 8482: one small answer instead of everything the name has.
			r.Answer = []dns.RR{&dns.HINFO{Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeHINFO, Class: dns.ClassINET, Ttl: 3600}, Cpu: "RFC8482"}}
		} else {
			r.Answer, r.Ns, r.Extra = a.Answer, a.Ns, a.Extra
		}
	}
	if opt != nil {
		r.SetEdns0(ourUDPSize, false)
	}
	if r.Rcode != dns.RcodeRefused || r.Answer != nil {
		r.Truncate(size)
		if r.Truncated {
			// Like NSD and Knot: a truncated answer carries nothing but the question (and the
			// OPT), so a resolver never caches part of an RRset; it retries over TCP.
			r.Answer, r.Ns = nil, nil
			r.Extra = keepOPT(r.Extra)
		}
	}
	var b []byte
	var err error
	if key != nil {
		r.SetTsig(key.Name, key.algorithm(), 300, time.Now().Unix())
		b, _, err = dns.TsigGenerate(r, key.Secret, m.IsTsig().MAC, false)
	} else {
		b, err = r.Pack()
	}
	if err != nil {
		s.log.Warn("dns: packing a response failed", "name", qname(m), "error", err)
		r = new(dns.Msg)
		r.SetRcode(m, dns.RcodeServerFailure)
		b, _ = r.Pack()
		return b, dns.RcodeServerFailure, qtype
	}
	return b, r.Rcode, qtype
}

func qname(m *dns.Msg) string {
	if len(m.Question) == 0 {
		return ""
	}
	return m.Question[0].Name
}

func keepOPT(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

// formErr answers a message that could not be parsed: FORMERR with its ID and opcode when the
// header is there and it is a query, else nothing.
func formErr(req []byte) ([]byte, int, uint16) {
	if len(req) < 12 || req[2]&0x80 != 0 {
		return nil, 0, 0
	}
	b := make([]byte, 12)
	copy(b, req[:2])
	b[2] = 0x80 | req[2]&0x78 // QR, the opcode
	b[3] = dns.RcodeFormatError
	return b, dns.RcodeFormatError, 0
}

// checkTSIG verifies a signed message: the key it names must be one of a secondary's, and the
// MAC and time must be right. A failure is answered NOTAUTH with the TSIG error (RFC 8945
// §5.2), unsigned.
func (st *state) checkTSIG(req []byte, t *dns.TSIG) (*TSIGKey, *dns.Msg) {
	k := st.keys[zone.Canonical(t.Hdr.Name)]
	fail := func(code uint16) (*TSIGKey, *dns.Msg) {
		m := new(dns.Msg)
		m.Unpack(req)
		r := new(dns.Msg)
		r.SetRcode(m, dns.RcodeNotAuth)
		r.Extra = nil
		r.SetTsig(t.Hdr.Name, t.Algorithm, t.Fudge, int64(t.TimeSigned))
		r.Extra[len(r.Extra)-1].(*dns.TSIG).Error = code
		r.Extra[len(r.Extra)-1].(*dns.TSIG).MACSize = 0
		return nil, r
	}
	if k == nil || zone.Canonical(k.algorithm()) != zone.Canonical(t.Algorithm) {
		return fail(dns.RcodeBadKey)
	}
	if err := dns.TsigVerify(req, k.Secret, "", false); err != nil {
		if errors.Is(err, dns.ErrTime) {
			return fail(dns.RcodeBadTime)
		}
		return fail(dns.RcodeBadSig)
	}
	return k, nil
}
