package platform

import (
	"net"
	"net/netip"
	"slices"
	"testing"
)

// TestStatusAddresses: a Gateway bound to all interfaces reports every usable address of the
// machine, loopback first; one bound to an address reports that address (finding W10).
func TestStatusAddresses(t *testing.T) {
	if got := statusAddresses("127.0.0.5"); !slices.Equal(got, []string{"127.0.0.5"}) {
		t.Fatalf("bound to 127.0.0.5: %v", got)
	}
	got := statusAddresses("")
	if len(got) == 0 || !netip.MustParseAddr(got[0]).IsLoopback() {
		t.Fatalf("all interfaces: %v, want loopback first", got)
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ip := netip.MustParsePrefix(a.String()).Addr().Unmap()
		if ip.IsLinkLocalUnicast() {
			if slices.Contains(got, ip.String()) {
				t.Errorf("link-local %s reported", ip)
			}
			continue
		}
		if !slices.Contains(got, ip.String()) {
			t.Errorf("interface address %s not reported: %v", ip, got)
		}
	}
}
