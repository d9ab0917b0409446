package tunnel

import (
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultDomain is the tunnel domain, as the original product names it: Backends written for
// it (`fqdn: office-link.tun.apoxy.net`) work unchanged. Its names are answered inside the
// gateway for the asking project only, never asked of public DNS.
const DefaultDomain = "tun.apoxy.net"

// Name is a parsed name of the tunnel domain: <node>.<domain> is the node (its agents'
// 127.0.0.1), <service>.<node>.<domain> a service behind it: one an agent publishes by name
// (`apoxy tunnel run --service grafana=10.0.0.5`), or an IPv4 address written with dashes
// (10-0-0-5).
type Name struct {
	Node, Service string
}

// ParseName parses host as a name of domain. ok is false when host is not in the domain;
// an error says why a name in it is not one (a nested name, a bad label).
func ParseName(host, domain string) (n Name, ok bool, err error) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	rest, found := strings.CutSuffix(host, "."+domain)
	if !found || domain == "" {
		return Name{}, false, nil
	}
	labels := strings.Split(rest, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return Name{}, true, fmt.Errorf("%s: empty or long label", host)
		}
	}
	switch len(labels) {
	case 1:
		return Name{Node: labels[0]}, true, nil
	case 2:
		return Name{Service: labels[0], Node: labels[1]}, true, nil
	}
	return Name{}, true, fmt.Errorf("%s: a tunnel name is <node>.%s or <service>.<node>.%s", host, domain, domain)
}

// DashedIPv4 reads a service label written as an IPv4 address with dashes (10-0-0-5).
func DashedIPv4(label string) (netip.Addr, bool) {
	if strings.Count(label, "-") != 3 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(strings.ReplaceAll(label, "-", "."))
	return a, err == nil && a.Is4()
}

// ParseServices reads an agent's published services ("name=ipv4,name=ipv4"), the
// ServicesHeader value; bad entries are reported, the good ones kept.
func ParseServices(v string) (map[string]netip.Addr, error) {
	out := map[string]netip.Addr{}
	var bad []string
	for _, kv := range strings.Split(v, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		name, addr, _ := strings.Cut(kv, "=")
		a, err := netip.ParseAddr(strings.TrimSpace(addr))
		name = strings.ToLower(strings.TrimSpace(name))
		if err != nil || !a.Is4() || !isLabel(name) {
			bad = append(bad, kv)
			continue
		}
		out[name] = a
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("services %q: want name=IPv4 with name a DNS label", bad)
	}
	return out, nil
}

// FormatServices writes services for the ServicesHeader.
func FormatServices(s map[string]netip.Addr) string {
	var b strings.Builder
	for name, a := range s {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(name + "=" + a.String())
	}
	return b.String()
}

func isLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ParseLabels reads an agent's labels ("k=v,k=v", the LabelsHeader value); keys and values
// follow Kubernetes label syntax.
func ParseLabels(v string) (map[string]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return nil, fmt.Errorf("label %q: want key=value", kv)
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, fmt.Errorf("label key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(val); len(errs) > 0 {
			return nil, fmt.Errorf("label %s value %q: %s", k, val, strings.Join(errs, "; "))
		}
		out[k] = val
	}
	return out, nil
}

// FormatLabels writes labels for the LabelsHeader.
func FormatLabels(l map[string]string) string {
	var parts []string
	for k, v := range l {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}
