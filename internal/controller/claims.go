package controller

import (
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"apoxy.dev/apoxy/internal/claims"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/status"
)

// RouteReasonHostnameConflict is the Accepted=False reason of a route none of whose hostnames
// is served because other projects served them first (or the admin assigned them elsewhere).
const RouteReasonHostnameConflict = "HostnameConflict"

// routeDenial gathers, for one route and one parent, the hostnames the claims registry
// refused and whether any of its virtual hosts still serves.
type routeDenial struct {
	hostnames []string
	message   string
	served    bool
}

type routeParent struct {
	kind, namespace, name string
	parentNS, parent      string
}

// markDeniedHostnames reports, on the routes of the full (unfiltered) snapshot, the virtual
// hosts the decision removed: a route left with none is Accepted=False (HostnameConflict) on
// that parent; one that keeps some says in its Accepted message which hostnames are not served.
func markDeniedHostnames(full *ir.Snapshot, d *claims.Decision, report *status.Report, now time.Time) {
	if d.Empty() {
		return
	}
	denials := map[routeParent]*routeDenial{}
	note := func(o ir.Origin, parent ir.Origin, host string, denial *claims.Denial) {
		k := routeParent{o.Kind, o.Namespace, o.Name, parent.Namespace, parent.Name}
		rd := denials[k]
		if rd == nil {
			rd = &routeDenial{}
			denials[k] = rd
		}
		if denial == nil {
			rd.served = true
			return
		}
		if !slices.Contains(rd.hostnames, host) {
			rd.hostnames = append(rd.hostnames, host)
		}
		rd.message = denial.Message
	}
	for _, l := range full.Listeners {
		for _, vh := range l.VirtualHosts {
			host, denial := vhostDenial(d, l.Name, vh)
			for _, r := range vh.Routes {
				note(r.Origin, vh.Origin, host, denial)
			}
		}
		for _, sr := range l.SNIRoutes {
			var denial *claims.Denial
			if v, ok := d.Name(l.Name, sr.Hostname); ok {
				denial = &v
			}
			note(sr.Route.Origin, ir.Origin{}, sr.Hostname, denial)
		}
	}
	for k, rd := range denials {
		if len(rd.hostnames) == 0 {
			continue
		}
		key := status.KeyOf(k.namespace, k.name)
		var parents []gwapiv1.RouteParentStatus
		switch k.kind {
		case "HTTPRoute":
			if st := report.HTTPRoutes[key]; st != nil {
				parents = st.Parents
			}
		case "GRPCRoute":
			if st := report.GRPCRoutes[key]; st != nil {
				parents = st.Parents
			}
		case "TLSRoute":
			if st := report.TLSRoutes[key]; st != nil {
				parents = st.Parents
			}
		}
		for i := range parents {
			p := &parents[i]
			ns := k.namespace
			if p.ParentRef.Namespace != nil {
				ns = string(*p.ParentRef.Namespace)
			}
			if k.parent != "" && (string(p.ParentRef.Name) != k.parent || ns != k.parentNS) {
				continue
			}
			acc := status.Find(p.Conditions, string(gwapiv1.RouteConditionAccepted))
			if acc == nil || acc.Status != metav1.ConditionTrue {
				continue
			}
			gen := acc.ObservedGeneration
			slices.Sort(rd.hostnames)
			if rd.served {
				msg := acc.Message + "; hostnames not served: " + strings.Join(rd.hostnames, ", ") + " (" + rd.message + ")"
				status.Set(&p.Conditions, status.Condition(string(gwapiv1.RouteConditionAccepted), true, acc.Reason, msg, gen, now))
				continue
			}
			status.Set(&p.Conditions, status.Condition(string(gwapiv1.RouteConditionAccepted), false, RouteReasonHostnameConflict, rd.message, gen, now))
		}
	}
}

// vhostDenial returns the first refused name of a virtual host and its denial (nil: served).
func vhostDenial(d *claims.Decision, socket string, vh *ir.VirtualHost) (string, *claims.Denial) {
	names := []string{vh.ListenerHostname, vh.Hostname}
	if (vh.ListenerHostname == "" || vh.ListenerHostname == "*") && (vh.Hostname == "" || vh.Hostname == "*") {
		names = []string{"*"}
	}
	for _, n := range names {
		if n == "" || n == "*" && len(names) > 1 {
			continue
		}
		if v, ok := d.Name(socket, n); ok {
			return n, &v
		}
	}
	return vh.Hostname, nil
}
