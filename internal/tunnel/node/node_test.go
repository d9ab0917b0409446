package node

import (
	"errors"
	"net/netip"
	"testing"

	"apoxy.dev/apoxy/internal/tunnel"
)

// The tunnel domain resolves per project: a node's name to its node address, a dashed IPv4
// or a published service to that address mapped into the node's slot 0; another project's
// node, or a service nobody publishes, is not found; names outside the domain are not ours.
func TestResolve(t *testing.T) {
	r := NewRegistry(tunnel.NewSigner([]byte("0123456789abcdef0123456789abcdef")), "")
	r.set("p1", map[string]Node{"office": {UID: "u1", Index: 3}})
	r.Services = func(project, node string) map[string]netip.Addr {
		if project == "p1" && node == "office" {
			return map[string]netip.Addr{"grafana": netip.MustParseAddr("10.0.0.5")}
		}
		return nil
	}
	np := tunnel.NodePrefix("p1", 3)
	for host, want := range map[string]netip.Addr{
		"office.tun.apoxy.net":             tunnel.NodeAddr(np),
		"grafana.office.tun.apoxy.net.":    tunnel.NodeMap4(np, netip.MustParseAddr("10.0.0.5")),
		"192-168-1-9.office.tun.apoxy.net": tunnel.NodeMap4(np, netip.MustParseAddr("192.168.1.9")),
	} {
		got, ok, err := r.Resolve("p1", host)
		if !ok || err != nil || len(got) != 1 || got[0] != want {
			t.Errorf("%s: %v %v %v, want %s", host, got, ok, err, want)
		}
	}
	for _, host := range []string{"office.tun.apoxy.net", "nope.tun.apoxy.net"} {
		if _, ok, err := r.Resolve("p2", host); !ok || !errors.Is(err, ErrNoSuchName) {
			t.Errorf("p2 %s: %v %v", host, ok, err)
		}
	}
	if _, ok, err := r.Resolve("p1", "loki.office.tun.apoxy.net"); !ok || !errors.Is(err, ErrNoSuchName) {
		t.Errorf("unpublished service: %v %v", ok, err)
	}
	if _, ok, _ := r.Resolve("p1", "example.com"); ok {
		t.Error("example.com is not in the tunnel domain")
	}
	if r.Egress("p1", "office") {
		t.Error("egress is off unless the node's spec turns it on")
	}
}
