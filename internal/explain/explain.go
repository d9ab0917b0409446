// Package explain says which route of a project serves a request and why the others do not,
// with the served route's effective policy and where each part of it comes from. The CLI's
// `apoxy explain URL` and the web console's explain view print it.
package explain

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"apoxy.dev/apoxy/internal/controller"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/route"
	"apoxy.dev/apoxy/internal/translate"
	"k8s.io/client-go/dynamic"
)

// URL writes which route and rule of a project (read through dc) would serve a request for
// rawURL, why the others did not, and the effective policy of the route that serves it: what
// `apoxy explain URL` and the console's explain view show.
func URL(ctx context.Context, dc dynamic.Interface, out io.Writer, rawURL, method string, headers []string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL (e.g. http://api.example.com:8080/v1)", rawURL)
	}
	set, err := controller.LoadSet(ctx, dc)
	if err != nil {
		return err
	}
	snap, _ := translate.Translate(set, translate.Options{Now: time.Now()})
	return Request(out, snap, u, method, headers)
}

// Request prints which route of a translated snapshot serves the request, why the
// others did not, and the served route's effective TrafficPolicy with the source of each
// block.
func Request(out io.Writer, snap *ir.Snapshot, u *url.URL, method string, headers []string) error {
	host, portStr, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, portStr = u.Host, ""
	}
	proto := ir.ProtocolHTTP
	if u.Scheme == "https" {
		proto = ir.ProtocolHTTPS
	}
	hdr := http.Header{}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return fmt.Errorf("header %q: use NAME:VALUE", h)
		}
		hdr.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	path := u.Path
	if path == "" {
		path = "/"
	}
	req := &route.Request{Host: strings.ToLower(host), Method: method, Path: path, Header: hdr, RawQuery: u.RawQuery}
	fmt.Fprintf(out, "Request: %s %s\n", method, u)
	found := false
	for _, l := range snap.Listeners {
		if l.Protocol != proto || (portStr != "" && strconv.Itoa(int(l.Port)) != portStr) {
			continue
		}
		found = true
		tab, err := route.Compile(l, func(r *ir.Route) (*ir.Route, error) { return r, nil })
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "Listener: %s (%s)\n", l.Name, l.Protocol)
		cands := tab.Explain(req)
		if len(cands) == 0 {
			fmt.Fprintf(out, "  no virtual host serves %q: the gateway answers 404\n", host)
			continue
		}
		var servedBy *ir.Route
		for _, c := range cands {
			r := c.Entry.Route
			if c.Reason == "" {
				fmt.Fprintf(out, "  SERVED BY  %s  (host %s)  %s\n", r.Name, c.Entry.VirtualHost.Hostname, action(r))
				servedBy = r
			} else {
				fmt.Fprintf(out, "  skipped    %s: %s\n", r.Name, c.Reason)
			}
		}
		if servedBy == nil {
			fmt.Fprintln(out, "  no route matches: the gateway answers 404")
		} else if err := printPolicy(out, snap, servedBy); err != nil {
			return err
		}
	}
	if !found {
		fmt.Fprintf(out, "No %s listener", proto)
		if portStr != "" {
			fmt.Fprintf(out, " on port %s", portStr)
		}
		fmt.Fprintln(out, " in this project.")
	}
	return nil
}

func action(r *ir.Route) string {
	switch {
	case r.Redirect != nil:
		return fmt.Sprintf("-> redirect %d", r.Redirect.StatusCode)
	case r.DirectResponse != nil:
		return fmt.Sprintf("-> direct response %d", r.DirectResponse.StatusCode)
	}
	var bs []string
	for _, b := range r.Backends {
		if b.Invalid {
			bs = append(bs, fmt.Sprintf("invalid backendRef (weight %d, answers 500)", b.Weight))
		} else {
			bs = append(bs, fmt.Sprintf("%s:%d (weight %d)", b.Backend, b.Port, b.Weight))
		}
	}
	return "-> " + strings.Join(bs, ", ")
}
