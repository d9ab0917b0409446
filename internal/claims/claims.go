// Package claims arbitrates what projects share on the data plane. Projects are a security
// boundary: every project's Gateways may listen on the same address and port (the default
// Gateway of every project does), so something must decide, before the data plane merges the
// projects' snapshots, which project's listener a socket serves and which project a hostname
// on it belongs to. That decision is made here, in the control plane, reported by each
// project's controller in its own status, and executed by the data plane; a project can never
// change what another project's traffic meets.
//
// The rules:
//
//   - A socket (address, port, transport) has one protocol. HTTP, HTTPS and TLS sockets are
//     shared by every project that claims them with the same protocol (requests are told apart
//     by hostname); TCP and UDP sockets carry one project's route. The senior claim (the one
//     held longest) decides; later claims with another protocol, or any later claim on an
//     exclusive socket, are denied (ProtocolConflict). An HTTPS socket also claims the UDP port
//     of the same number, where it serves HTTP/3.
//   - A hostname on a shared socket belongs to one project. Names overlap when they are equal or
//     one is a wildcard ("*.example.com") matching the other; the catch-all ("*", routes without
//     hostnames) overlaps only itself. Claims are granted in order of seniority; a claim that
//     overlaps a granted claim of another project is denied (HostnameConflict).
//   - The server admin may assign hostnames to projects (Assign): a name covered by another
//     project's assignment is denied (HostnameAssigned) whatever its seniority.
//
// Seniority is the time the registry first saw a claim, kept while the claim is held without a
// break and persisted (File), so it survives restarts; a claim that is dropped or changes
// protocol starts again at the back. It is not taken from object timestamps a tenant could
// choose: an old route given a new hostname does not jump the queue. Before every known
// project has reported once after start (Expect), a claim the registry has no record of is
// dated to its project's creation, so a first start with several projects is deterministic.
package claims

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"apoxy.dev/apoxy/internal/hostname"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/pki"
)

// Reason says why a claim was denied.
type Reason string

// Denial reasons. They never name the project holding the socket or name.
const (
	// ProtocolConflict: another project serves the socket with another protocol, or holds it
	// exclusively (TCP, UDP).
	ProtocolConflict Reason = "ProtocolConflict"
	// HostnameConflict: another project serves an overlapping hostname on the socket.
	HostnameConflict Reason = "HostnameConflict"
	// HostnameAssigned: the server admin assigned the hostname to another project.
	HostnameAssigned Reason = "HostnameAssigned"
)

// Denial is one refused claim of a project.
type Denial struct {
	// Socket is the data-plane socket name (ir.SocketName).
	Socket string
	// Name is the refused hostname, "" when the whole socket is refused.
	Name   string
	Reason Reason
	// Message explains the refusal and the fix, without naming the other project.
	Message string
}

// Decision is what a project may serve: its denials, by socket and name.
type Decision struct {
	sockets map[string]Denial
	names   map[string]map[string]Denial
}

// Socket returns the denial of a whole socket, if any.
func (d *Decision) Socket(socket string) (Denial, bool) {
	if d == nil {
		return Denial{}, false
	}
	v, ok := d.sockets[socket]
	return v, ok
}

// Name returns the denial of a hostname on a socket, if any ("" and "*" both mean the
// catch-all). A name on a denied socket is denied with the socket's reason.
func (d *Decision) Name(socket, name string) (Denial, bool) {
	if d == nil {
		return Denial{}, false
	}
	if v, ok := d.sockets[socket]; ok {
		return v, true
	}
	v, ok := d.names[socket][canonical(name)]
	return v, ok
}

// Denials lists every denial, sorted.
func (d *Decision) Denials() []Denial {
	if d == nil {
		return nil
	}
	var out []Denial
	for _, v := range d.sockets {
		out = append(out, v)
	}
	for _, m := range d.names {
		for _, v := range m {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b Denial) int { return cmp.Or(cmp.Compare(a.Socket, b.Socket), cmp.Compare(a.Name, b.Name)) })
	return out
}

// Empty reports whether nothing is denied.
func (d *Decision) Empty() bool { return d == nil || len(d.sockets) == 0 && len(d.names) == 0 }

func (d *Decision) key() string {
	var b strings.Builder
	for _, v := range d.Denials() {
		fmt.Fprintf(&b, "%s|%s|%s\n", v.Socket, v.Name, v.Reason)
	}
	return b.String()
}

// Options configure a Registry.
type Options struct {
	// File persists seniority across restarts ("" keeps it in memory only).
	File string
	// Notify is called (outside the registry's lock) with each project whose decision changed
	// because of another project's claims, so its controller settles again.
	Notify func(project string)
	// Now returns the current time (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Registry holds every project's claims. It is safe for concurrent use.
type Registry struct {
	opts Options

	saveMu sync.Mutex
	mu     sync.Mutex
	// sockets: socket -> project -> claim; names: socket -> name -> project -> since.
	sockets map[string]map[string]socketClaim
	names   map[string]map[string]map[string]time.Time
	// assigned: project -> hostname patterns the admin gave it.
	assigned map[string][]string
	// decisions: the last decision handed to each project (to notify changes).
	decisions map[string]string
	// expect: projects (and their creation) that have not reported since start.
	expect      map[string]time.Time
	expectUntil time.Time
}

type socketClaim struct {
	Protocol string    `json:"protocol"`
	Since    time.Time `json:"since"`
}

// New returns a registry, loading seniority from opts.File when it exists.
func New(opts Options) (*Registry, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Registry{
		opts:      opts,
		sockets:   map[string]map[string]socketClaim{},
		names:     map[string]map[string]map[string]time.Time{},
		assigned:  map[string][]string{},
		decisions: map[string]string{},
	}
	if opts.File != "" {
		if err := r.load(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Expect names the projects that exist at start, with their creation times. Until each has
// settled once (or a minute has passed), claims without a persisted record are dated to their
// project's creation instead of now. Records of projects not listed are dropped.
func (r *Registry) Expect(projects map[string]time.Time) {
	r.mu.Lock()
	r.expect = maps.Clone(projects)
	r.expectUntil = r.opts.Now().Add(time.Minute)
	gone := func(_, p string) bool { _, ok := projects[p]; return !ok }
	changed := r.dropSocketsLocked(gone)
	changed = r.dropNamesLocked(func(sock, _, p string) bool { return gone(sock, p) }) || changed
	r.mu.Unlock()
	if changed {
		r.save()
	}
}

// Assign sets the hostname patterns the admin gave a project (nil removes them). Other
// projects' overlapping claims are denied from then on.
func (r *Registry) Assign(project string, hostnames []string) {
	r.mu.Lock()
	old := r.assigned[project]
	norm := make([]string, 0, len(hostnames))
	for _, h := range hostnames {
		norm = append(norm, canonical(h))
	}
	slices.Sort(norm)
	if len(norm) == 0 {
		delete(r.assigned, project)
	} else {
		r.assigned[project] = norm
	}
	same := slices.Equal(old, norm)
	var notify []string
	if !same {
		notify = r.changedLocked("")
	}
	r.mu.Unlock()
	r.notify(notify)
}

// Release drops every claim of a project (it was deleted); projects its claims held back are
// notified.
func (r *Registry) Release(project string) {
	r.mu.Lock()
	r.dropSocketsLocked(func(_, p string) bool { return p == project })
	r.dropNamesLocked(func(_, _, p string) bool { return p == project })
	delete(r.decisions, project)
	delete(r.assigned, project)
	delete(r.expect, project)
	notify := r.changedLocked(project)
	r.mu.Unlock()
	r.save()
	r.notify(notify)
}

// Settle records what a project's snapshot claims (replacing its previous claims) and returns
// the snapshot reduced to what the project may serve, with the decision to report in status.
// snap is not modified. A nil snapshot releases the project's claims.
func (r *Registry) Settle(project string, snap *ir.Snapshot) (*ir.Snapshot, *Decision) {
	if snap == nil {
		r.Release(project)
		return nil, &Decision{}
	}
	want := claimsOf(snap)
	r.mu.Lock()
	now := r.opts.Now()
	since := now
	if created, ok := r.expect[project]; ok {
		if now.Before(r.expectUntil) {
			since = created
		}
		delete(r.expect, project)
	}
	changed := r.updateLocked(project, want, since)
	dec := r.decideLocked(project)
	r.decisions[project] = dec.key()
	notify := r.changedLocked(project)
	r.mu.Unlock()
	if changed {
		r.save()
	}
	r.notify(notify)
	return filter(snap, dec), dec
}

// Decision returns a project's current decision without changing its claims.
func (r *Registry) Decision(project string) *Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.decideLocked(project)
}

func (r *Registry) notify(projects []string) {
	if r.opts.Notify == nil {
		return
	}
	for _, p := range projects {
		r.opts.Notify(p)
	}
}

// wanted is what one snapshot claims: protocol and hostnames per socket.
type wanted struct {
	protocol map[string]string
	names    map[string]map[string]bool
}

// h3 is the protocol an HTTPS socket claims on the UDP port of its number (HTTP/3), shared
// with other HTTPS sockets and exclusive against UDP listeners.
const h3 = "HTTPS/3"

func claimsOf(snap *ir.Snapshot) wanted {
	w := wanted{protocol: map[string]string{}, names: map[string]map[string]bool{}}
	add := func(sock, name string) {
		if w.names[sock] == nil {
			w.names[sock] = map[string]bool{}
		}
		w.names[sock][canonical(name)] = true
	}
	for _, l := range snap.Listeners {
		w.protocol[l.Name] = string(l.Protocol)
		if l.Protocol == ir.ProtocolHTTPS {
			w.protocol[ir.SocketName(ir.ProtocolUDP, l.Address, l.Port)] = h3
		}
		if !shared(string(l.Protocol)) {
			continue
		}
		if l.TLS != nil {
			for _, c := range l.TLS.Certificates {
				if c.Hostname != "" {
					add(l.Name, c.Hostname)
				}
			}
		}
		for _, vh := range l.VirtualHosts {
			for _, n := range vhostNames(vh) {
				add(l.Name, n)
			}
		}
		for _, sr := range l.SNIRoutes {
			add(l.Name, sr.Hostname)
		}
	}
	return w
}

// vhostNames are the hostnames a virtual host claims: its listener's hostname and its own,
// or the catch-all when it has neither.
func vhostNames(vh *ir.VirtualHost) []string {
	var out []string
	if vh.ListenerHostname != "" && vh.ListenerHostname != "*" {
		out = append(out, vh.ListenerHostname)
	}
	if vh.Hostname != "" && vh.Hostname != "*" {
		out = append(out, vh.Hostname)
	}
	if len(out) == 0 {
		out = append(out, "*")
	}
	return out
}

func shared(protocol string) bool {
	return protocol == string(ir.ProtocolHTTP) || protocol == string(ir.ProtocolHTTPS) || protocol == string(ir.ProtocolTLS) || protocol == h3
}

// canonical is the registry's form of a name: lower case, no trailing dot, "*" for the
// catch-all.
func canonical(name string) string { return hostname.Canonical(name) }

// updateLocked replaces a project's claims, keeping the seniority of those it still holds.
func (r *Registry) updateLocked(project string, w wanted, since time.Time) bool {
	// Dropped, or the protocol changed: a new claim starts at the back.
	changed := r.dropSocketsLocked(func(sock, p string) bool {
		return p == project && w.protocol[sock] != r.sockets[sock][p].Protocol
	})
	for sock, proto := range w.protocol {
		m := r.sockets[sock]
		if m == nil {
			m = map[string]socketClaim{}
			r.sockets[sock] = m
		}
		if _, ok := m[project]; !ok {
			m[project] = socketClaim{Protocol: proto, Since: since}
			changed = true
		}
	}
	changed = r.dropNamesLocked(func(sock, n, p string) bool { return p == project && !w.names[sock][n] }) || changed
	for sock, names := range w.names {
		byName := r.names[sock]
		if byName == nil {
			byName = map[string]map[string]time.Time{}
			r.names[sock] = byName
		}
		for n := range names {
			m := byName[n]
			if m == nil {
				m = map[string]time.Time{}
				byName[n] = m
			}
			if _, ok := m[project]; !ok {
				m[project] = since
				changed = true
			}
		}
	}
	return changed
}

// dropSocketsLocked removes the socket claims drop selects; it reports whether any went.
func (r *Registry) dropSocketsLocked(drop func(sock, project string) bool) bool {
	changed := false
	for sock, m := range r.sockets {
		for p := range m {
			if drop(sock, p) {
				delete(m, p)
				changed = true
			}
		}
		if len(m) == 0 {
			delete(r.sockets, sock)
		}
	}
	return changed
}

// dropNamesLocked removes the hostname claims drop selects; it reports whether any went.
func (r *Registry) dropNamesLocked(drop func(sock, name, project string) bool) bool {
	changed := false
	for sock, byName := range r.names {
		for n, m := range byName {
			for p := range m {
				if drop(sock, n, p) {
					delete(m, p)
					changed = true
				}
			}
			if len(m) == 0 {
				delete(byName, n)
			}
		}
		if len(byName) == 0 {
			delete(r.names, sock)
		}
	}
	return changed
}

// socketOwners decides a socket: which projects' claims are granted.
func (r *Registry) socketOwners(sock string) map[string]bool {
	m := r.sockets[sock]
	type entry struct {
		project string
		c       socketClaim
	}
	entries := make([]entry, 0, len(m))
	for p, c := range m {
		entries = append(entries, entry{p, c})
	}
	slices.SortFunc(entries, func(a, b entry) int {
		return cmp.Or(a.c.Since.Compare(b.c.Since), cmp.Compare(a.project, b.project))
	})
	granted := map[string]bool{}
	if len(entries) == 0 {
		return granted
	}
	first := entries[0].c.Protocol
	for i, e := range entries {
		if i == 0 || shared(first) && e.c.Protocol == first {
			granted[e.project] = true
		}
	}
	return granted
}

// nameOwners decides the hostnames of a socket among the projects granted the socket: claims
// in order of seniority, each granted unless it overlaps a granted claim of another project or
// another project's assignment. It returns the denial reason per project and name.
func (r *Registry) nameOwners(sock string, owners map[string]bool) map[string]map[string]Reason {
	type entry struct {
		project, name string
		since         time.Time
	}
	var entries []entry
	for n, m := range r.names[sock] {
		for p, t := range m {
			if owners[p] {
				entries = append(entries, entry{p, n, t})
			}
		}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		return cmp.Or(a.since.Compare(b.since), cmp.Compare(a.project, b.project), cmp.Compare(a.name, b.name))
	})
	denied := map[string]map[string]Reason{}
	deny := func(p, n string, why Reason) {
		if denied[p] == nil {
			denied[p] = map[string]Reason{}
		}
		denied[p][n] = why
	}
	granted := map[string]string{} // granted name -> project
	for _, e := range entries {
		if r.assignedElsewhere(e.project, e.name) {
			deny(e.project, e.name, HostnameAssigned)
			continue
		}
		if grantedOverlap(granted, e.project, e.name) {
			deny(e.project, e.name, HostnameConflict)
			continue
		}
		if _, ok := granted[e.name]; !ok {
			granted[e.name] = e.project
		}
	}
	return denied
}

// grantedOverlap reports whether name overlaps a name granted to another project: the same
// name, a granted wildcard matching it (looked up suffix by suffix), or, for a wildcard, a
// granted name under it.
func grantedOverlap(granted map[string]string, project, name string) bool {
	if p, ok := granted[name]; ok && p != project {
		return true
	}
	if name == "*" {
		return false
	}
	rest := strings.TrimPrefix(name, "*.")
	for {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			break
		}
		rest = rest[i+1:]
		if p, ok := granted["*."+rest]; ok && p != project {
			return true
		}
	}
	if strings.HasPrefix(name, "*.") {
		for n, p := range granted {
			if p != project && hostname.Covers(name, n) {
				return true
			}
		}
	}
	return false
}

// assignedElsewhere reports whether a name overlaps a hostname the admin assigned to another
// project, while the project itself has no assignment covering it.
func (r *Registry) assignedElsewhere(project, name string) bool {
	if name == "*" {
		return false
	}
	for _, a := range r.assigned[project] {
		if a == name || hostname.Covers(a, name) {
			return false
		}
	}
	for p, as := range r.assigned {
		if p == project {
			continue
		}
		for _, a := range as {
			if hostname.Overlap(a, name) {
				return true
			}
		}
	}
	return false
}

// decideAllLocked decides every socket once and returns each claiming project's decision.
func (r *Registry) decideAllLocked() map[string]*Decision {
	out := map[string]*Decision{}
	get := func(p string) *Decision {
		d := out[p]
		if d == nil {
			d = &Decision{sockets: map[string]Denial{}, names: map[string]map[string]Denial{}}
			out[p] = d
		}
		return d
	}
	for sock, m := range r.sockets {
		owners := r.socketOwners(sock)
		for p, c := range m {
			d := get(p)
			if !owners[p] {
				d.sockets[sock] = Denial{Socket: sock, Reason: ProtocolConflict, Message: socketMessage(sock, c.Protocol)}
			}
		}
		for p, names := range r.nameOwners(sock, owners) {
			d := get(p)
			for n, why := range names {
				if d.names[sock] == nil {
					d.names[sock] = map[string]Denial{}
				}
				d.names[sock][n] = Denial{Socket: sock, Name: n, Reason: why, Message: nameMessage(sock, n, why)}
			}
		}
	}
	return out
}

func (r *Registry) decideLocked(project string) *Decision {
	if d := r.decideAllLocked()[project]; d != nil {
		return d
	}
	return &Decision{}
}

func socketMessage(sock, protocol string) string {
	if protocol == h3 {
		return fmt.Sprintf("UDP port %s is used by another project, so HTTP/3 cannot be served on it; use another port", strings.TrimPrefix(sock, "udp/"))
	}
	return fmt.Sprintf("%s is already used by another project with another protocol (or exclusively, as TCP and UDP listeners are); choose another port, or another address with spec.addresses", strings.TrimPrefix(sock, "udp/"))
}

func nameMessage(sock, name string, why Reason) string {
	if why == HostnameAssigned {
		return fmt.Sprintf("hostname %s on %s is assigned to another project by the server admin", name, sock)
	}
	if name == "*" {
		return fmt.Sprintf("another project already serves requests for any hostname on %s; set hostnames on the route or listener, or use another port", sock)
	}
	return fmt.Sprintf("hostname %s on %s overlaps a hostname another project served first; ask the server admin to assign it to this project, or use another hostname or port", name, sock)
}

// changedLocked returns the projects (other than except) whose decision differs from the one
// last handed to them, recording the new ones.
func (r *Registry) changedLocked(except string) []string {
	all := r.decideAllLocked()
	var out []string
	for p, old := range r.decisions {
		if p == except {
			continue
		}
		if k := all[p].key(); k != old {
			r.decisions[p] = k
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// filter returns snap without what the decision denies (snap is not modified).
func filter(snap *ir.Snapshot, d *Decision) *ir.Snapshot {
	if d.Empty() {
		return snap
	}
	out := *snap
	out.Listeners = nil
	for _, l := range snap.Listeners {
		if _, ok := d.sockets[l.Name]; ok {
			continue
		}
		_, noH3 := d.sockets[ir.SocketName(ir.ProtocolUDP, l.Address, l.Port)]
		noH3 = noH3 && l.Protocol == ir.ProtocolHTTPS
		names := d.names[l.Name]
		if len(names) == 0 && !noH3 {
			out.Listeners = append(out.Listeners, l)
			continue
		}
		denied := func(n string) bool { _, ok := names[canonical(n)]; return ok }
		nl := *l
		// Another project holds the UDP port: HTTPS serves without HTTP/3.
		nl.NoHTTP3 = l.NoHTTP3 || noH3
		nl.VirtualHosts = slices.DeleteFunc(slices.Clone(l.VirtualHosts), func(vh *ir.VirtualHost) bool {
			return slices.ContainsFunc(vhostNames(vh), denied)
		})
		nl.SNIRoutes = slices.DeleteFunc(slices.Clone(l.SNIRoutes), func(sr *ir.SNIRoute) bool { return denied(sr.Hostname) })
		if l.TLS != nil {
			t := *l.TLS
			t.Certificates = slices.DeleteFunc(slices.Clone(l.TLS.Certificates), func(c ir.SNICertificate) bool {
				return c.Hostname != "" && denied(c.Hostname)
			})
			nl.TLS = &t
		}
		out.Listeners = append(out.Listeners, &nl)
	}
	out.SetVersion()
	return &out
}

// record is the persisted form.
type record struct {
	Sockets map[string]map[string]socketClaim          `json:"sockets"`
	Names   map[string]map[string]map[string]time.Time `json:"names"`
}

func (r *Registry) load() error {
	data, err := os.ReadFile(r.opts.File)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		// A damaged file costs seniority, not availability: start afresh and say so.
		r.opts.Logger.Warn("claims file unreadable; hostname and port seniority starts afresh", "file", r.opts.File, "err", err)
		return nil
	}
	if rec.Sockets != nil {
		r.sockets = rec.Sockets
	}
	if rec.Names != nil {
		r.names = rec.Names
	}
	return nil
}

func (r *Registry) save() {
	if r.opts.File == "" {
		return
	}
	r.saveMu.Lock() // writes land in the order their contents were taken
	defer r.saveMu.Unlock()
	r.mu.Lock()
	data, err := json.Marshal(record{Sockets: r.sockets, Names: r.names})
	r.mu.Unlock()
	if err == nil {
		err = pki.WriteFileAtomic(r.opts.File, data, 0o600)
	}
	if err != nil {
		r.opts.Logger.Error("cannot persist claims; seniority may be lost on restart", "file", r.opts.File, "err", err)
	}
}
