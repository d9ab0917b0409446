package v1alpha3

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Defaults and limits of the domain kinds.
const (
	// DefaultTTL is a record's TTL when it sets none.
	DefaultTTL = 300
	// MaxTTL bounds TTLs and the negative TTL: a day.
	MaxTTL = 86400
	// MaxTXTLength bounds one TXT value (sent as 255-byte strings); a whole answer must still
	// fit a DNS message, which TCP allows up to 64 KiB.
	MaxTXTLength = 4000
	// MaxValues bounds the values of one record.
	MaxValues = 100
)

// SetDefaultsDomainRecord sets the TTL.
func SetDefaultsDomainRecord(r *DomainRecord) {
	if r.Spec.TTL == nil {
		v := int32(DefaultTTL)
		r.Spec.TTL = &v
	}
}

// ZoneName is a zone's DNS name: spec.domainName, else the object's name; lower case, without
// the trailing dot.
func (z *DomainZone) ZoneName() string {
	n := z.Spec.DomainName
	if n == "" {
		n = z.Name
	}
	return strings.TrimSuffix(strings.ToLower(n), ".")
}

// ValidateDomainZone checks a zone; old is nil on create.
func ValidateDomainZone(z, old *DomainZone) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if z.Spec.DomainName != "" {
		if msg := checkName(z.Spec.DomainName, false); msg != "" {
			errs = append(errs, field.Invalid(spec.Child("domainName"), z.Spec.DomainName, msg))
		}
	} else if msg := checkName(z.Name, false); msg != "" {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), z.Name, msg+"; or give the zone's DNS name in spec.domainName"))
	}
	if old != nil && old.ZoneName() != z.ZoneName() {
		errs = append(errs, field.Forbidden(spec.Child("domainName"), "a zone's DNS name cannot change (it is "+old.ZoneName()+"); create a new DomainZone"))
	}
	for i, ns := range z.Spec.Nameservers {
		if msg := checkName(ns, false); msg != "" {
			errs = append(errs, field.Invalid(spec.Child("nameservers").Index(i), ns, msg))
		}
	}
	if s := z.Spec.SOA; s != nil {
		p := spec.Child("soa")
		if s.Email != "" {
			if at := strings.LastIndexByte(s.Email, '@'); at <= 0 || checkName(s.Email[at+1:], false) != "" {
				errs = append(errs, field.Invalid(p.Child("email"), s.Email, "must be a mailbox such as hostmaster@example.com"))
			}
		}
		for _, t := range []struct {
			name     string
			v        *int32
			min, max int32
		}{{"refresh", s.Refresh, 60, 604800}, {"retry", s.Retry, 60, 86400}, {"expire", s.Expire, 3600, 4 * 604800}, {"negativeTTL", s.NegativeTTL, 0, MaxTTL}} {
			if t.v != nil && (*t.v < t.min || *t.v > t.max) {
				errs = append(errs, field.Invalid(p.Child(t.name), *t.v, fmt.Sprintf("must be between %d and %d seconds", t.min, t.max)))
			}
		}
	}
	for i, s := range z.Spec.Secondaries {
		p := spec.Child("secondaries").Index(i)
		if _, err := SecondaryAddr(s.Address); err != nil {
			errs = append(errs, field.Invalid(p.Child("address"), s.Address, err.Error()))
		}
		if s.TSIGKeyRef != nil && s.TSIGKeyRef.Name == "" {
			errs = append(errs, field.Required(p.Child("tsigKeyRef", "name"), "the Secret holding the TSIG key"))
		}
	}
	return errs
}

// SecondaryAddr parses a secondary's address: an IP with an optional port (default 53).
func SecondaryAddr(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("must be an IP address with an optional port: 192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53")
	}
	return netip.AddrPortFrom(a, 53), nil
}

// RecordName is a record's name, lower case, without the trailing dot.
func (r *DomainRecord) RecordName() string {
	return strings.TrimSuffix(strings.ToLower(r.Spec.Name), ".")
}

// ValidateDomainRecord checks a record; old is nil on create. What involves other objects
// (the zone exists, the name is inside it, no CNAME beside other data) is reported in status.
func ValidateDomainRecord(r, old *DomainRecord) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if r.Spec.Name == "" {
		errs = append(errs, field.Required(spec.Child("name"), "the record's fully qualified name, such as api.example.com"))
	} else if msg := checkName(r.Spec.Name, true); msg != "" {
		errs = append(errs, field.Invalid(spec.Child("name"), r.Spec.Name, msg))
	}
	if old != nil {
		if old.RecordName() != r.RecordName() {
			errs = append(errs, field.Forbidden(spec.Child("name"), "a record's name cannot change (it is "+old.Spec.Name+"); create a new DomainRecord"))
		}
		if old.Spec.Zone != r.Spec.Zone {
			errs = append(errs, field.Forbidden(spec.Child("zone"), "a record's zone cannot change (it is "+strconv.Quote(old.Spec.Zone)+"); create a new DomainRecord"))
		}
		if (old.Spec.Target.Ref != nil) != (r.Spec.Target.Ref != nil) || (old.Spec.Target.DNS != nil) != (r.Spec.Target.DNS != nil) {
			errs = append(errs, field.Forbidden(spec.Child("target"), "a record's target cannot switch between ref and dns; create a new DomainRecord"))
		}
	}
	if t := r.Spec.TTL; t != nil && (*t < 0 || *t > MaxTTL) {
		errs = append(errs, field.Invalid(spec.Child("ttl"), *t, fmt.Sprintf("must be between 0 and %d seconds", MaxTTL)))
	}
	tp := spec.Child("target")
	switch t := r.Spec.Target; {
	case t.Ref != nil && t.DNS != nil:
		errs = append(errs, field.Invalid(tp, "ref and dns", "set exactly one of target.ref and target.dns"))
	case t.Ref == nil && t.DNS == nil:
		errs = append(errs, field.Required(tp, "set target.ref (a Gateway) or target.dns (record data)"))
	case t.Ref != nil:
		errs = append(errs, validateRef(t.Ref, tp.Child("ref"))...)
	default:
		errs = append(errs, validateDNS(t.DNS, r.RecordName(), tp.Child("dns"))...)
	}
	if tls := r.Spec.TLS; tls != nil {
		p := spec.Child("tls")
		if r.Spec.Target.Ref == nil && !tls.Disabled {
			errs = append(errs, field.Invalid(p, "tls", "a certificate is managed only for a record whose target is a ref (a Gateway serves the name); remove tls or set tls.disabled"))
		}
		if ca := tls.CertificateAuthority; ca != "" && ca != "letsencrypt" && ca != "letsencrypt-staging" && !strings.HasPrefix(ca, "https://") {
			errs = append(errs, field.NotSupported(p.Child("certificateAuthority"), ca, []string{"letsencrypt", "letsencrypt-staging", "https://<ACME directory URL>"}))
		}
		switch tls.Challenge {
		case "", "HTTP01":
			if tls.Challenge == "HTTP01" && strings.HasPrefix(r.Spec.Name, "*.") {
				errs = append(errs, field.Invalid(p.Child("challenge"), tls.Challenge, "a wildcard name can only be validated with DNS01"))
			}
		case "DNS01":
			if r.Spec.Zone == "" {
				errs = append(errs, field.Invalid(p.Child("challenge"), tls.Challenge, "DNS01 needs spec.zone: the challenge record is written into a zone served here"))
			}
		default:
			errs = append(errs, field.NotSupported(p.Child("challenge"), tls.Challenge, []string{"HTTP01", "DNS01"}))
		}
	}
	if strings.HasPrefix(r.Spec.Name, "*.") && r.Spec.Target.Ref != nil && r.Spec.Zone == "" && (r.Spec.TLS == nil || !r.Spec.TLS.Disabled) {
		errs = append(errs, field.Invalid(spec.Child("zone"), "", "a wildcard's certificate needs DNS01, which needs the record in a zone served here: set spec.zone, or tls.disabled"))
	}
	return errs
}

func validateRef(ref *DomainTargetRef, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if ref.Group != "gateway.apoxy.dev" || ref.Kind != "Gateway" {
		errs = append(errs, field.NotSupported(p, ref.Group+"/"+ref.Kind, []string{"gateway.apoxy.dev/Gateway"}))
	}
	if ref.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), "the Gateway's name"))
	}
	return errs
}

func validateDNS(d *DomainTargetDNS, name string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	set := d.populated()
	switch len(set) {
	case 0:
		return append(errs, field.Required(p, "set one of a, aaaa, fqdn, txt, mx, srv, caa, ns, ds, dnskey, dkim, spf, dmarc"))
	case 1:
	default:
		return append(errs, field.Invalid(p, strings.Join(set, ", "), "set exactly one record type per DomainRecord; make one DomainRecord per type"))
	}
	tooMany := func(n int, f string) {
		if n > MaxValues {
			errs = append(errs, field.TooMany(p.Child(f), n, MaxValues))
		}
	}
	for i, a := range d.A {
		if ip, err := netip.ParseAddr(a); err != nil || !ip.Is4() {
			errs = append(errs, field.Invalid(p.Child("a").Index(i), a, "must be an IPv4 address such as 192.0.2.10"))
		}
	}
	tooMany(len(d.A), "a")
	for i, a := range d.AAAA {
		if ip, err := netip.ParseAddr(a); err != nil || !ip.Is6() || ip.Is4In6() {
			errs = append(errs, field.Invalid(p.Child("aaaa").Index(i), a, "must be an IPv6 address such as 2001:db8::10"))
		}
	}
	tooMany(len(d.AAAA), "aaaa")
	if d.FQDN != nil {
		if msg := checkName(*d.FQDN, false); msg != "" {
			errs = append(errs, field.Invalid(p.Child("fqdn"), *d.FQDN, msg))
		} else if strings.TrimSuffix(strings.ToLower(*d.FQDN), ".") == name {
			errs = append(errs, field.Invalid(p.Child("fqdn"), *d.FQDN, "a name cannot be an alias of itself"))
		}
	}
	for i, t := range d.TXT {
		if len(t) > MaxTXTLength {
			errs = append(errs, field.TooLong(p.Child("txt").Index(i), "", MaxTXTLength))
		}
	}
	tooMany(len(d.TXT), "txt")
	for i, m := range d.MX {
		q := p.Child("mx").Index(i)
		errs = append(errs, checkUint16(q.Child("preference"), m.Preference)...)
		if m.Exchange != "." {
			if msg := checkName(m.Exchange, false); msg != "" {
				errs = append(errs, field.Invalid(q.Child("exchange"), m.Exchange, msg))
			}
		}
	}
	tooMany(len(d.MX), "mx")
	for i, s := range d.SRV {
		q := p.Child("srv").Index(i)
		errs = append(errs, checkUint16(q.Child("priority"), s.Priority)...)
		errs = append(errs, checkUint16(q.Child("weight"), s.Weight)...)
		errs = append(errs, checkUint16(q.Child("port"), s.Port)...)
		if s.Target != "." {
			if msg := checkName(s.Target, false); msg != "" {
				errs = append(errs, field.Invalid(q.Child("target"), s.Target, msg))
			}
		}
	}
	tooMany(len(d.SRV), "srv")
	for i, c := range d.CAA {
		q := p.Child("caa").Index(i)
		if c.Flags != 0 && c.Flags != 128 {
			errs = append(errs, field.Invalid(q.Child("flags"), c.Flags, "must be 0, or 128 (critical)"))
		}
		switch c.Tag {
		case "issue", "issuewild", "iodef", "issuemail":
		default:
			errs = append(errs, field.NotSupported(q.Child("tag"), c.Tag, []string{"issue", "issuewild", "iodef", "issuemail"}))
		}
		if len(c.Value) > 255 {
			errs = append(errs, field.TooLong(q.Child("value"), "", 255))
		}
	}
	tooMany(len(d.CAA), "caa")
	for i, ns := range d.NS {
		if msg := checkName(ns, false); msg != "" {
			errs = append(errs, field.Invalid(p.Child("ns").Index(i), ns, msg))
		}
	}
	tooMany(len(d.NS), "ns")
	for i, ds := range d.DS {
		q := p.Child("ds").Index(i)
		errs = append(errs, checkUint16(q.Child("keyTag"), ds.KeyTag)...)
		errs = append(errs, checkUint8(q.Child("algorithm"), ds.Algorithm)...)
		errs = append(errs, checkUint8(q.Child("digestType"), ds.DigestType)...)
		if b, err := hex.DecodeString(ds.Digest); err != nil || len(b) == 0 {
			errs = append(errs, field.Invalid(q.Child("digest"), ds.Digest, "must be the digest in hex"))
		} else if want := map[int32]int{1: 20, 2: 32, 4: 48}[ds.DigestType]; want != 0 && len(b) != want {
			errs = append(errs, field.Invalid(q.Child("digest"), ds.Digest, fmt.Sprintf("a digest of type %d (%s) is %d bytes (%d hex digits); this is %d bytes", ds.DigestType, map[int32]string{1: "SHA-1", 2: "SHA-256", 4: "SHA-384"}[ds.DigestType], want, 2*want, len(b))))
		}
	}
	for i, k := range d.DNSKEY {
		q := p.Child("dnskey").Index(i)
		errs = append(errs, checkUint16(q.Child("flags"), k.Flags)...)
		if k.Protocol != 0 && k.Protocol != 3 {
			errs = append(errs, field.Invalid(q.Child("protocol"), k.Protocol, "must be 3 (RFC 4034)"))
		}
		errs = append(errs, checkUint8(q.Child("algorithm"), k.Algorithm)...)
		if b, err := base64.StdEncoding.DecodeString(k.PublicKey); err != nil || len(b) == 0 {
			errs = append(errs, field.Invalid(q.Child("publicKey"), k.PublicKey, "must be the key in base64"))
		}
	}
	for i, k := range d.DKIM {
		q := p.Child("dkim").Index(i)
		if msg := checkLabel(k.Selector); msg != "" {
			errs = append(errs, field.Invalid(q.Child("selector"), k.Selector, msg))
		}
		if k.KeyType != "" && k.KeyType != "rsa" && k.KeyType != "ed25519" {
			errs = append(errs, field.NotSupported(q.Child("keyType"), k.KeyType, []string{"rsa", "ed25519"}))
		}
		if b, err := base64.StdEncoding.DecodeString(k.PublicKey); err != nil || len(b) == 0 {
			errs = append(errs, field.Invalid(q.Child("publicKey"), "", "must be the public key in base64, without the PEM header and footer"))
		} else if len(k.PublicKey) > MaxTXTLength {
			errs = append(errs, field.TooLong(q.Child("publicKey"), "", MaxTXTLength))
		}
	}
	if s := d.SPF; s != nil {
		q := p.Child("spf")
		for i, v := range s.IP4 {
			if !isCIDROrIP(v, true) {
				errs = append(errs, field.Invalid(q.Child("ip4").Index(i), v, "must be an IPv4 address or range such as 192.0.2.0/24"))
			}
		}
		for i, v := range s.IP6 {
			if !isCIDROrIP(v, false) {
				errs = append(errs, field.Invalid(q.Child("ip6").Index(i), v, "must be an IPv6 address or range such as 2001:db8::/32"))
			}
		}
		for i, v := range s.Include {
			if msg := checkName(v, false); msg != "" {
				errs = append(errs, field.Invalid(q.Child("include").Index(i), v, msg))
			}
		}
		switch s.All {
		case "", "fail", "softfail", "neutral", "pass":
		default:
			errs = append(errs, field.NotSupported(q.Child("all"), s.All, []string{"fail", "softfail", "neutral", "pass"}))
		}
		if txt := s.Text(); len(txt) > MaxTXTLength {
			errs = append(errs, field.TooLong(q, "", MaxTXTLength))
		}
	}
	if m := d.DMARC; m != nil {
		q := p.Child("dmarc")
		pol := []string{"none", "quarantine", "reject"}
		if !oneOf(m.Policy, pol...) {
			errs = append(errs, field.NotSupported(q.Child("policy"), m.Policy, pol))
		}
		if m.SubdomainPolicy != "" && !oneOf(m.SubdomainPolicy, pol...) {
			errs = append(errs, field.NotSupported(q.Child("subdomainPolicy"), m.SubdomainPolicy, pol))
		}
		if m.Percent != nil && (*m.Percent < 0 || *m.Percent > 100) {
			errs = append(errs, field.Invalid(q.Child("percent"), *m.Percent, "must be between 0 and 100"))
		}
		for _, l := range []struct {
			f string
			v []string
		}{{"aggregateReports", m.AggregateReports}, {"forensicReports", m.ForensicReports}} {
			for i, u := range l.v {
				if !strings.HasPrefix(u, "mailto:") || strings.ContainsAny(u, ",; ") {
					errs = append(errs, field.Invalid(q.Child(l.f).Index(i), u, "must be a mailto: URI such as mailto:dmarc@example.com"))
				}
			}
		}
		for _, a := range []struct{ f, v string }{{"dkimAlignment", m.DKIMAlignment}, {"spfAlignment", m.SPFAlignment}} {
			if a.v != "" && a.v != "relaxed" && a.v != "strict" {
				errs = append(errs, field.NotSupported(q.Child(a.f), a.v, []string{"relaxed", "strict"}))
			}
		}
	}
	return errs
}

// populated lists the record types set.
func (d *DomainTargetDNS) populated() []string {
	var s []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"a", len(d.A) > 0}, {"aaaa", len(d.AAAA) > 0}, {"fqdn", d.FQDN != nil}, {"txt", len(d.TXT) > 0},
		{"mx", len(d.MX) > 0}, {"srv", len(d.SRV) > 0}, {"caa", len(d.CAA) > 0}, {"ns", len(d.NS) > 0},
		{"ds", len(d.DS) > 0}, {"dnskey", len(d.DNSKEY) > 0}, {"dkim", len(d.DKIM) > 0},
		{"spf", d.SPF != nil}, {"dmarc", d.DMARC != nil},
	} {
		if f.set {
			s = append(s, f.name)
		}
	}
	return s
}

// Type is the DNS type the data publishes (TXT for the dkim, spf and dmarc helpers; CNAME
// for fqdn); empty when none or several are set.
func (d *DomainTargetDNS) Type() string {
	set := d.populated()
	if len(set) != 1 {
		return ""
	}
	switch set[0] {
	case "fqdn":
		return "CNAME"
	case "dkim", "spf", "dmarc":
		return "TXT"
	}
	return strings.ToUpper(set[0])
}

// Text is the SPF record's TXT value.
func (s *SPFRecord) Text() string {
	var b strings.Builder
	b.WriteString("v=spf1")
	if s.A {
		b.WriteString(" a")
	}
	if s.MX {
		b.WriteString(" mx")
	}
	for _, v := range s.IP4 {
		b.WriteString(" ip4:" + v)
	}
	for _, v := range s.IP6 {
		b.WriteString(" ip6:" + v)
	}
	for _, v := range s.Include {
		b.WriteString(" include:" + strings.TrimSuffix(v, "."))
	}
	switch s.All {
	case "fail":
		b.WriteString(" -all")
	case "neutral":
		b.WriteString(" ?all")
	case "pass":
		b.WriteString(" +all")
	default:
		b.WriteString(" ~all")
	}
	return b.String()
}

// Text is the DMARC record's TXT value.
func (m *DMARCRecord) Text() string {
	parts := []string{"v=DMARC1", "p=" + m.Policy}
	if m.SubdomainPolicy != "" {
		parts = append(parts, "sp="+m.SubdomainPolicy)
	}
	if m.Percent != nil {
		parts = append(parts, "pct="+strconv.Itoa(int(*m.Percent)))
	}
	if len(m.AggregateReports) > 0 {
		parts = append(parts, "rua="+strings.Join(m.AggregateReports, ","))
	}
	if len(m.ForensicReports) > 0 {
		parts = append(parts, "ruf="+strings.Join(m.ForensicReports, ","))
	}
	if m.DKIMAlignment == "strict" {
		parts = append(parts, "adkim=s")
	}
	if m.SPFAlignment == "strict" {
		parts = append(parts, "aspf=s")
	}
	return strings.Join(parts, "; ")
}

// Text is the DKIM key's TXT value.
func (k *DKIMRecord) Text() string {
	kt := k.KeyType
	if kt == "" {
		kt = "rsa"
	}
	return "v=DKIM1; k=" + kt + "; p=" + k.PublicKey
}

func oneOf(s string, set ...string) bool {
	for _, v := range set {
		if s == v {
			return true
		}
	}
	return false
}

func isCIDROrIP(s string, v4 bool) bool {
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Is4() == v4
	}
	ip, n, err := net.ParseCIDR(s)
	return err == nil && (ip.To4() != nil) == v4 && n != nil
}

func checkUint16(p *field.Path, v int32) field.ErrorList {
	if v < 0 || v > 65535 {
		return field.ErrorList{field.Invalid(p, v, "must be between 0 and 65535")}
	}
	return nil
}

func checkUint8(p *field.Path, v int32) field.ErrorList {
	if v < 0 || v > 255 {
		return field.ErrorList{field.Invalid(p, v, "must be between 0 and 255")}
	}
	return nil
}

// checkName returns why s is not a DNS name a record or zone may use ("" when it is): labels
// of 1-63 letters, digits, '-' and '_' (service and DKIM labels), 253 bytes in all, at least
// one label; a leading "*." when wildcard is allowed. A trailing dot is accepted.
func checkName(s string, wildcard bool) string {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "must be a DNS name such as api.example.com"
	}
	if len(s) > 253 {
		return "must be at most 253 characters"
	}
	labels := strings.Split(s, ".")
	for i, l := range labels {
		if l == "*" {
			if !wildcard || i != 0 {
				return "a wildcard '*' may only be the first label (*.example.com)"
			}
			continue
		}
		if msg := checkLabel(l); msg != "" {
			return msg
		}
	}
	return ""
}

func checkLabel(l string) string {
	if l == "" {
		return "must not have an empty label (two dots in a row)"
	}
	if len(l) > 63 {
		return "each label (between dots) must be at most 63 characters"
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		case c == '-' && i > 0 && i < len(l)-1:
		default:
			return fmt.Sprintf("label %q: use letters, digits, '-' (not first or last) and '_'", l)
		}
	}
	return ""
}

// ValidateDomainRecordPeers checks a record against the other stored records of its project:
// at one name of one zone, a CNAME stands alone (RFC 1034 §3.6.2), and each record type is
// one DomainRecord (it holds every value). The zone index reports the same conflicts for
// records stored before this check or written concurrently.
func ValidateDomainRecordPeers(r *DomainRecord, others []*DomainRecord) field.ErrorList {
	if r.Spec.Zone == "" {
		return nil // hosted elsewhere: nothing is served here to clash
	}
	typ, atName := r.ownType()
	if !atName {
		return nil
	}
	name := strings.TrimSuffix(strings.ToLower(r.Spec.Name), ".")
	var errs field.ErrorList
	for _, o := range others {
		if o.Name == r.Name || o.Spec.Zone != r.Spec.Zone || strings.TrimSuffix(strings.ToLower(o.Spec.Name), ".") != name {
			continue
		}
		ot, oAt := o.ownType()
		switch {
		case !oAt:
		case typ == "CNAME":
			errs = append(errs, field.Invalid(field.NewPath("spec", "target", "dns", "fqdn"), *r.Spec.Target.DNS.FQDN,
				fmt.Sprintf("a CNAME cannot share its name with other data (RFC 1034 §3.6.2): DomainRecord %q holds %s at %s; delete it, or give this name A/AAAA records instead", o.Name, ot, r.Spec.Name)))
		case ot == "CNAME":
			errs = append(errs, field.Invalid(field.NewPath("spec", "name"), r.Spec.Name,
				fmt.Sprintf("DomainRecord %q is a CNAME at this name, and a name with a CNAME holds nothing else (RFC 1034 §3.6.2); delete it first", o.Name)))
		case ot == typ:
			errs = append(errs, field.Invalid(field.NewPath("spec", "target"), typ,
				fmt.Sprintf("DomainRecord %q already holds the %s records of %s: put every value in that one record", o.Name, typ, r.Spec.Name)))
		}
	}
	return errs
}

// ownType is the record type a record serves at its own name; atName is false for the
// helpers served at a name below it (dkim at <selector>._domainkey, dmarc at _dmarc).
func (r *DomainRecord) ownType() (typ string, atName bool) {
	if r.Spec.Target.Ref != nil {
		return "A", true // and/or AAAA: the Gateway's addresses
	}
	d := r.Spec.Target.DNS
	if d == nil {
		return "", false
	}
	if set := d.populated(); len(set) == 1 && (set[0] == "dkim" || set[0] == "dmarc") {
		return "TXT", false
	}
	return d.Type(), true
}
