// Package domain turns the projects' DomainZones and DomainRecords into what the DNS server
// answers. Each project's controller runs a Reconciler, which builds the project's zones and
// reports their status; the process's Registry merges every project's zones into the one zone
// set the authoritative server (internal/dns/authority) serves, and decides which project a
// zone belongs to: projects are tenants, so a project can never answer for, or under, a name
// another project holds.
package domain

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"

	"apoxy.dev/apoxy/internal/dns/authority"
	"apoxy.dev/apoxy/internal/dns/zone"
)

// Server is what the Registry publishes to: the authoritative DNS server.
type Server interface {
	Update(set *zone.Set, secondaries map[string][]authority.Secondary)
}

// Offer is one zone a project wants served.
type Offer struct {
	Zone        *zone.Zone
	Secondaries []authority.Secondary
	// Since is the DomainZone's creation time: the older claim on a name wins.
	Since time.Time
}

// Registry merges the projects' zones. A zone is granted to the project with the oldest claim
// on its name or on any name above or below it (a project holding example.com also holds every
// name under it; one holding shop.example.com keeps it from a later example.com): overlap
// between projects is never served twice, and the later claim is denied with a message that
// does not name the other project.
type Registry struct {
	mu     sync.Mutex
	server Server
	offers map[string][]Offer // by project
	denied map[string]map[string]string
	// onChange is called with the projects whose denials changed (their status is stale).
	onChange func(projects []string)
}

// NewRegistry makes a registry that publishes to server (nil: nothing is served, as when
// the process runs no DNS server; zones are still arbitrated).
func NewRegistry(server Server) *Registry {
	return &Registry{server: server, offers: map[string][]Offer{}, denied: map[string]map[string]string{}}
}

// OnChange sets the function told which projects' grants changed because of another
// project's offer (so their controllers run again and report it).
func (r *Registry) OnChange(f func(projects []string)) {
	r.mu.Lock()
	r.onChange = f
	r.mu.Unlock()
}

// Offer replaces a project's zones and publishes the merged set. It returns the project's
// denied zones (origin → why).
func (r *Registry) Offer(project string, offers []Offer) map[string]string {
	r.mu.Lock()
	if len(offers) == 0 {
		delete(r.offers, project)
	} else {
		r.offers[project] = offers
	}
	granted, denied := r.decideLocked()
	var changed []string
	for p, d := range denied {
		if p != project && !sameDenials(r.denied[p], d) {
			changed = append(changed, p)
		}
	}
	for p := range r.denied {
		if _, still := denied[p]; !still && p != project {
			changed = append(changed, p)
		}
	}
	r.denied = denied
	notify := r.onChange
	if r.server != nil {
		zones := make([]*zone.Zone, 0, len(granted))
		secs := map[string][]authority.Secondary{}
		for _, o := range granted {
			zones = append(zones, o.Zone)
			secs[o.Zone.Origin()] = o.Secondaries
		}
		r.server.Update(zone.NewSet(zones...), secs)
	}
	mine := denied[project]
	r.mu.Unlock()
	if notify != nil && len(changed) > 0 {
		notify(changed)
	}
	return mine
}

type claim struct {
	project string
	offer   Offer
}

// decideLocked grants zones oldest claim first; a zone equal to, inside or above a granted
// zone of another project is denied. Within one project, nested zones are allowed (the inner
// one answers for its names: a delegation to oneself).
func (r *Registry) decideLocked() ([]Offer, map[string]map[string]string) {
	var all []claim
	for p, offers := range r.offers {
		for _, o := range offers {
			all = append(all, claim{p, o})
		}
	}
	slices.SortFunc(all, func(a, b claim) int {
		return cmp.Or(a.offer.Since.Compare(b.offer.Since), cmp.Compare(a.project, b.project), cmp.Compare(a.offer.Zone.Origin(), b.offer.Zone.Origin()))
	})
	var granted []claim
	denied := map[string]map[string]string{}
	deny := func(p, origin, msg string) {
		if denied[p] == nil {
			denied[p] = map[string]string{}
		}
		denied[p][origin] = msg
	}
	for _, c := range all {
		o := c.offer.Zone.Origin()
		ok := true
		for _, g := range granted {
			go_ := g.offer.Zone.Origin()
			switch {
			case g.project == c.project && go_ == o:
				ok = false
				deny(c.project, o, fmt.Sprintf("another DomainZone of this project already serves %s", trim(o)))
			case g.project == c.project:
			case go_ == o:
				ok = false
				deny(c.project, o, fmt.Sprintf("the zone %s is held by another project on this server", trim(o)))
			case dns.IsSubDomain(go_, o) || dns.IsSubDomain(o, go_):
				ok = false
				deny(c.project, o, fmt.Sprintf("the zone %s overlaps a zone another project on this server holds (%s)", trim(o), overlapWord(o, go_)))
			}
			if !ok {
				break
			}
		}
		if ok {
			granted = append(granted, c)
		}
	}
	out := make([]Offer, len(granted))
	for i, g := range granted {
		out[i] = g.offer
	}
	return out, denied
}

func overlapWord(mine, theirs string) string {
	if dns.IsSubDomain(theirs, mine) {
		return "it is inside that zone"
	}
	return "that zone is inside it"
}

func trim(s string) string {
	if len(s) > 1 {
		return s[:len(s)-1]
	}
	return s
}

func sameDenials(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Release drops a project's zones (the project was deleted or its controller stopped).
func (r *Registry) Release(project string) { r.Offer(project, nil) }
