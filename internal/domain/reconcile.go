package domain

import (
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	corev1a3 "apoxy.dev/apoxy/api/core/v1alpha3"
	"apoxy.dev/apoxy/internal/acme"
	"apoxy.dev/apoxy/internal/controller"
	"apoxy.dev/apoxy/internal/dns/authority"
	"apoxy.dev/apoxy/internal/dns/zone"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/resource"
	"apoxy.dev/apoxy/internal/status"
)

var (
	zonesGVR   = corev1a3.SchemeGroupVersion.WithResource("domainzones")
	recordsGVR = corev1a3.SchemeGroupVersion.WithResource("domainrecords")
)

// Options configure a project's Reconciler.
type Options struct {
	Project  string
	Registry *Registry
	// Serving says whether a DNS server runs (zones are then Active, else Pending).
	Serving bool
	// Nameservers are the NS names of zones that name none (--dns-nameservers). Empty: each
	// zone's ns1.<zone>, answered with NSAddrs.
	Nameservers []string
	// NSAddrs are the DNS server's public addresses, for ns1.<zone>.
	NSAddrs []netip.Addr
	// PublicAddrs replace a Gateway address that is unspecified (0.0.0.0, ::): a Gateway
	// bound to every interface is reached at the server's public addresses.
	PublicAddrs []netip.Addr
	// Certs obtains the certificates of records that target a Gateway (nil: none are).
	Certs  *acme.Manager
	Logger *slog.Logger
	Now    func() time.Time
}

// Reconciler builds one project's zones on every pass of its controller, offers them to the
// Registry and writes the DomainZones' and DomainRecords' status.
type Reconciler struct {
	opts Options
	mu   sync.Mutex
	// serials remembers each zone's data hash and serial, so the serial moves exactly when
	// the data does.
	serials map[string]serial
	// certs are the project's certificates (nil without Options.Certs).
	certs *acme.Project
}

type serial struct {
	hash [32]byte
	n    uint32
}

// NewReconciler makes a project's domain reconciler.
func NewReconciler(opts Options) *Reconciler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Reconciler{opts: opts, serials: map[string]serial{}}
	if opts.Certs != nil {
		r.certs = opts.Certs.Project(opts.Project)
	}
	return r
}

// Amend implements controller.Amender: the project's certificates and HTTP-01 answers join
// its snapshot.
func (r *Reconciler) Amend(set *resource.Set, snap *ir.Snapshot, report *status.Report, scope string) {
	if r.certs != nil {
		r.certs.Amend(set, snap, report.GatewayBinds, scope)
	}
}

// Conditions and reasons of the domain kinds.
const (
	CondReady       = "Ready"
	CondZoneReady   = "ZoneReady"
	CondTargetReady = "TargetReady"
	CondTLSReady    = "TLSReady"
)

// recordState is what one pass decided about a record.
type recordState struct {
	rec    *corev1a3.DomainRecord
	rrs    []dns.RR
	phase  corev1a3.DomainRecordPhase
	conds  []metav1.Condition
	values []string
}

func cond(typ string, ok bool, reason, msg string) metav1.Condition {
	st := metav1.ConditionFalse
	if ok {
		st = metav1.ConditionTrue
	}
	return metav1.Condition{Type: typ, Status: st, Reason: reason, Message: msg}
}

// Reconcile implements controller.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, set *resource.Set, api dynamic.Interface, kick func()) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	zones := map[string]*corev1a3.DomainZone{}
	for _, z := range set.DomainZones {
		zones[z.Name] = z
	}
	records := slices.Clone(set.DomainRecords)
	slices.SortFunc(records, func(a, b *corev1a3.DomainRecord) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Name, b.Name))
	})
	states := make([]*recordState, 0, len(records))
	byZone := map[string][]*recordState{}
	for _, rec := range records {
		st := r.target(set, rec)
		states = append(states, st)
		if rec.Spec.Zone == "" {
			if st.phase == "" {
				st.phase = corev1a3.DomainRecordPhaseActive
				st.conds = append(st.conds, cond(CondZoneReady, true, "ExternalZone", "spec.zone is empty: this name's DNS is hosted elsewhere; point it at the values in status.resolvedValues"))
			}
			continue
		}
		if zones[rec.Spec.Zone] == nil {
			st.phase = corev1a3.DomainRecordPhasePending
			st.conds = append(st.conds, cond(CondZoneReady, false, "ZoneNotFound", fmt.Sprintf("DomainZone %q does not exist; create it (its spec.domainName is the zone's DNS name)", rec.Spec.Zone)))
			continue
		}
		byZone[rec.Spec.Zone] = append(byZone[rec.Spec.Zone], st)
	}

	type built struct {
		obj      *corev1a3.DomainZone
		z        *zone.Zone
		ns       []string
		problems map[string]string
	}
	var txt map[string][]string
	if r.certs != nil {
		txt = r.certs.TXT()
	}
	var builtZones []built
	var offers []Offer
	names := make([]string, 0, len(zones))
	for n := range zones {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		zobj := zones[n]
		spec, ns := r.zoneSpec(zobj, byZone[n])
		spec.Records = append(spec.Records, challengeRecords(spec.Origin, txt)...)
		z, problems := r.build(spec)
		builtZones = append(builtZones, built{zobj, z, ns, problems})
		secs, err := secondaries(set, zobj)
		if err != nil {
			problems[""] = err.Error()
		}
		offers = append(offers, Offer{Zone: z, Secondaries: secs, Since: zobj.CreationTimestamp.Time})
	}
	denied := r.opts.Registry.Offer(r.opts.Project, offers)

	var errs []error
	for _, b := range builtZones {
		origin := b.z.Origin()
		next := corev1a3.DomainZoneStatus{
			ObservedGeneration: b.obj.Generation, DomainName: strings.TrimSuffix(origin, "."),
			Nameservers: b.ns, Serial: b.z.Serial(), Records: servedRecords(byZone[b.obj.Name], b.problems),
			Conditions: slices.Clone(b.obj.Status.Conditions),
		}
		var c metav1.Condition
		switch why, isDenied := denied[origin]; {
		case isDenied:
			next.Phase = corev1a3.DomainZonePhaseError
			c = cond(CondReady, false, "ZoneConflict", why)
		case b.problems[""] != "":
			next.Phase = corev1a3.DomainZonePhaseError
			c = cond(CondReady, false, "InvalidSecondary", b.problems[""])
		case !r.opts.Serving:
			next.Phase = corev1a3.DomainZonePhasePending
			c = cond(CondReady, false, "NoDNSServer", "no DNS server runs in this process: start it with --dns-addr")
		default:
			next.Phase = corev1a3.DomainZonePhaseActive
			c = cond(CondReady, true, "Served", fmt.Sprintf("answering for %s; delegate it at the registrar to %s", strings.TrimSuffix(origin, "."), strings.Join(b.ns, ", ")))
		}
		c.ObservedGeneration = b.obj.Generation
		setCondition(&next.Conditions, c, r.opts.Now())
		for _, st := range byZone[b.obj.Name] {
			if st.phase != "" {
				continue // its target is not ready
			}
			if why, isDenied := denied[origin]; isDenied {
				st.phase = corev1a3.DomainRecordPhasePending
				st.conds = append(st.conds, cond(CondZoneReady, false, "ZoneNotServed", why))
				continue
			}
			if msg := b.problems[st.rec.Name]; msg != "" {
				st.phase = corev1a3.DomainRecordPhasePending
				st.conds = append(st.conds, cond(CondZoneReady, false, "Conflict", msg))
				continue
			}
			st.phase = corev1a3.DomainRecordPhaseActive
			if !r.opts.Serving {
				st.phase = corev1a3.DomainRecordPhasePending
			}
			st.conds = append(st.conds, cond(CondZoneReady, r.opts.Serving, string(next.Phase), fmt.Sprintf("in zone %s", strings.TrimSuffix(origin, "."))))
		}
		if !equalZoneStatus(&b.obj.Status, &next) {
			if err := controller.WriteStatus(ctx, api, zonesGVR, "DomainZone", &b.obj.ObjectMeta, &next, "apoxy-domains"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	certs := r.syncCertificates(ctx, set, api, states, kick)
	for _, st := range states {
		next := corev1a3.DomainRecordStatus{
			ObservedGeneration: st.rec.Generation, Phase: st.phase, ResolvedValues: st.values,
			Conditions: slices.Clone(st.rec.Status.Conditions),
		}
		if res, ok := certs[st.rec.Name]; ok {
			next.Certificate = res.Certificate
			if res.Issuing && next.Phase == corev1a3.DomainRecordPhaseActive {
				next.Phase = corev1a3.DomainRecordPhaseIssuing
			}
			st.conds = append(st.conds, cond(CondTLSReady, res.Ready, res.Reason, res.Message))
		} else {
			meta.RemoveStatusCondition(&next.Conditions, CondTLSReady)
		}
		if st.rec.Spec.Target.DNS != nil {
			next.Type = st.rec.Spec.Target.DNS.Type()
		} else {
			next.Type = refType(st.rrs)
		}
		ready := next.Phase == corev1a3.DomainRecordPhaseActive
		msg := "served"
		for _, c := range st.conds {
			c.ObservedGeneration = st.rec.Generation
			setCondition(&next.Conditions, c, r.opts.Now())
			if c.Status != metav1.ConditionTrue && !ready {
				msg = c.Message
			}
		}
		rc := cond(CondReady, ready, string(next.Phase), msg)
		rc.ObservedGeneration = st.rec.Generation
		setCondition(&next.Conditions, rc, r.opts.Now())
		if !equalRecordStatus(&st.rec.Status, &next) {
			if err := controller.WriteStatus(ctx, api, recordsGVR, "DomainRecord", &st.rec.ObjectMeta, &next, "apoxy-domains"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("domains: writing status: %w", errs[0])
	}
	return nil
}

// target resolves a record's data: a ref's Gateway addresses, or its DNS data. The phase is
// set when the target cannot be served.
func (r *Reconciler) target(set *resource.Set, rec *corev1a3.DomainRecord) *recordState {
	st := &recordState{rec: rec}
	ref := rec.Spec.Target.Ref
	if ref == nil {
		st.rrs = zone.FromDomainRecord(rec, nil)
		st.values = zone.Values(st.rrs)
		return st
	}
	ns := ref.Namespace
	if ns == "" {
		ns = "default"
	}
	var addrs []netip.Addr
	found := false
	for _, gw := range set.Gateways {
		if gw.Namespace != ns || gw.Name != ref.Name {
			continue
		}
		found = true
		for _, a := range gw.Status.Addresses {
			ip, err := netip.ParseAddr(a.Value)
			if err != nil {
				continue
			}
			if ip.IsUnspecified() {
				addrs = append(addrs, r.publicAddrs(ip.Is4())...)
				continue
			}
			addrs = append(addrs, ip)
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	switch {
	case !found:
		st.phase = corev1a3.DomainRecordPhaseDetached
		st.conds = append(st.conds, cond(CondTargetReady, false, "TargetNotFound", fmt.Sprintf("Gateway %s/%s does not exist; the name answers nothing until it does", ns, ref.Name)))
	case len(addrs) == 0:
		st.phase = corev1a3.DomainRecordPhasePending
		st.conds = append(st.conds, cond(CondTargetReady, false, "NoAddresses", fmt.Sprintf("Gateway %s/%s has no addresses yet (status.addresses)", ns, ref.Name)))
	default:
		st.conds = append(st.conds, cond(CondTargetReady, true, "Resolved", fmt.Sprintf("Gateway %s/%s", ns, ref.Name)))
	}
	st.rrs = zone.FromDomainRecord(rec, addrs)
	st.values = zone.Values(st.rrs)
	return st
}

// publicAddrs are the server's public addresses of one family, for an unspecified bind.
func (r *Reconciler) publicAddrs(v4 bool) []netip.Addr {
	var out []netip.Addr
	for _, a := range r.opts.PublicAddrs {
		if a.Is4() == v4 {
			out = append(out, a)
		}
	}
	return out
}

// zoneSpec is a DomainZone's data: SOA, NS (and ns1.<zone> when defaulted), and the records
// of the zone whose target is ready.
func (r *Reconciler) zoneSpec(z *corev1a3.DomainZone, states []*recordState) (zone.Spec, []string) {
	origin := zone.Canonical(z.ZoneName())
	ns := z.Spec.Nameservers
	if len(ns) == 0 {
		ns = r.opts.Nameservers
	}
	defaulted := len(ns) == 0
	if defaulted {
		ns = []string{"ns1." + origin}
	}
	canon := make([]string, len(ns))
	for i, n := range ns {
		canon[i] = strings.TrimSuffix(zone.Canonical(n), ".")
	}
	soa := zone.SOA{MName: ns[0], RName: "hostmaster." + origin, Refresh: 3600, Retry: 600, Expire: 1209600, Minimum: 300, TTL: 3600}
	if s := z.Spec.SOA; s != nil {
		if s.Email != "" {
			at := strings.LastIndexByte(s.Email, '@')
			soa.RName = strings.ReplaceAll(s.Email[:at], ".", `\.`) + "." + s.Email[at+1:]
		}
		set := func(dst *uint32, v *int32) {
			if v != nil {
				*dst = uint32(*v)
			}
		}
		set(&soa.Refresh, s.Refresh)
		set(&soa.Retry, s.Retry)
		set(&soa.Expire, s.Expire)
		set(&soa.Minimum, s.NegativeTTL)
	}
	spec := zone.Spec{Origin: origin, SOA: soa, NS: ns, NSTTL: 3600}
	for _, st := range states {
		if st.phase == "" {
			spec.Records = append(spec.Records, zone.Record{Key: st.rec.Name, RRs: st.rrs})
		}
	}
	if defaulted && len(r.opts.NSAddrs) > 0 {
		glue := zone.Record{Key: ""}
		for _, a := range r.opts.NSAddrs {
			a = a.Unmap()
			if a.Is4() {
				glue.RRs = append(glue.RRs, &dns.A{Hdr: dns.RR_Header{Name: "ns1." + origin, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600}, A: net.IP(a.AsSlice())})
			} else {
				glue.RRs = append(glue.RRs, &dns.AAAA{Hdr: dns.RR_Header{Name: "ns1." + origin, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 3600}, AAAA: net.IP(a.AsSlice())})
			}
		}
		spec.Records = append(spec.Records, glue)
	}
	return spec, canon
}

// build indexes a zone with a serial that moves exactly when its data does: the larger of
// the last serial plus one and the current Unix time (so it also moves across restarts).
func (r *Reconciler) build(spec zone.Spec) (*zone.Zone, map[string]string) {
	h := sha256.New()
	fmt.Fprintln(h, spec.NS, spec.SOA.MName, spec.SOA.RName, spec.SOA.Refresh, spec.SOA.Retry, spec.SOA.Expire, spec.SOA.Minimum)
	for _, rec := range spec.Records {
		fmt.Fprintln(h, rec.Key)
		for _, rr := range rec.RRs {
			fmt.Fprintln(h, rr.String())
		}
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	prev, seen := r.serials[spec.Origin]
	if !seen || prev.hash != sum {
		prev = serial{hash: sum, n: max(prev.n+1, uint32(r.opts.Now().Unix()))}
		r.serials[spec.Origin] = prev
	}
	spec.SOA.Serial = prev.n
	z, problems := zone.Build(spec)
	delete(problems, "") // the default glue lost to a record of the user's own
	return z, problems
}

// secondaries reads a zone's secondaries and their TSIG keys from the project's Secrets.
func secondaries(set *resource.Set, z *corev1a3.DomainZone) ([]authority.Secondary, error) {
	var out []authority.Secondary
	for i, s := range z.Spec.Secondaries {
		ap, err := corev1a3.SecondaryAddr(s.Address)
		if err != nil {
			return nil, fmt.Errorf("spec.secondaries[%d].address: %v", i, err)
		}
		sec := authority.Secondary{Addr: ap}
		if ref := s.TSIGKeyRef; ref != nil {
			ns := cmp.Or(ref.Namespace, "default")
			var found bool
			for _, sec2 := range set.Secrets {
				if sec2.Namespace != ns || sec2.Name != ref.Name {
					continue
				}
				found = true
				name, secret := string(sec2.Data["name"]), string(sec2.Data["secret"])
				if name == "" || secret == "" {
					return nil, fmt.Errorf("spec.secondaries[%d].tsigKeyRef: Secret %s/%s needs the keys \"name\" and \"secret\" (base64)", i, ns, ref.Name)
				}
				sec.Key = &authority.TSIGKey{Name: dns.Fqdn(name), Secret: secret, Algorithm: string(sec2.Data["algorithm"])}
			}
			if !found {
				return nil, fmt.Errorf("spec.secondaries[%d].tsigKeyRef: Secret %s/%s not found", i, ns, ref.Name)
			}
		}
		out = append(out, sec)
	}
	return out, nil
}

func refType(rrs []dns.RR) string {
	var types []string
	for _, rr := range rrs {
		t := dns.TypeToString[rr.Header().Rrtype]
		if !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	if len(types) == 0 {
		return "A"
	}
	return strings.Join(types, ",")
}

// setCondition sets a condition, keeping its transition time when its status is unchanged.
func setCondition(conds *[]metav1.Condition, c metav1.Condition, now time.Time) {
	c.LastTransitionTime = metav1.NewTime(now.Truncate(time.Second))
	meta.SetStatusCondition(conds, c)
}

func equalZoneStatus(a, b *corev1a3.DomainZoneStatus) bool { return equality.Semantic.DeepEqual(a, b) }

func equalRecordStatus(a, b *corev1a3.DomainRecordStatus) bool {
	return equality.Semantic.DeepEqual(a, b)
}

// servedRecords counts a zone's DomainRecords that are served (ready targets without a
// conflict); the zone's own SOA, NS and ns1 glue are not DomainRecords.
func servedRecords(states []*recordState, problems map[string]string) int32 {
	var n int32
	for _, st := range states {
		if st.phase == "" && problems[st.rec.Name] == "" {
			n++
		}
	}
	return n
}
