package upstream

import (
	"errors"
	"net/netip"
	"testing"
)

// TestDestinations: link-local, metadata and unspecified addresses are never reachable; internal
// ranges only where allowed (for everyone or one project); the server's own sockets never, even
// through an allowed range or another local address (finding F5).
func TestDestinations(t *testing.T) {
	d := NewDestinations([]netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, []Reserved{
		{Addr: netip.MustParseAddrPort("127.0.0.1:9901"), Name: "the admin listener"},
		{Addr: netip.MustParseAddrPort("0.0.0.0:6443"), Name: "the API server"},
	})
	d.SetProject("trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	cases := []struct {
		backend, addr string
		ok            bool
	}{
		{"p/ns/b", "93.184.216.34:443", true},
		{"p/ns/b", "[2606:2800:220:1::]:443", true},
		{"p/ns/b", "169.254.169.254:80", false},
		{"trusted/ns/b", "169.254.169.254:80", false},
		{"p/ns/b", "[fe80::1]:80", false},
		{"p/ns/b", "[fd00:ec2::254]:80", false},
		{"p/ns/b", "100.100.100.200:80", false},
		{"p/ns/b", "0.0.0.0:80", false},
		{"p/ns/b", "[::]:80", false},
		{"p/ns/b", "224.0.0.1:80", false},
		{"p/ns/b", "127.0.0.1:8080", false},
		{"p/ns/b", "[::ffff:127.0.0.1]:8080", false},
		{"p/ns/b", "192.168.1.10:80", false},
		{"p/ns/b", "10.1.2.3:80", true},
		{"p/ns/b", "10.2.2.3:80", false},
		{"trusted/ns/b", "127.0.0.1:8080", true},
		{"trusted/ns/b", "127.0.0.1:9901", false},
		{"trusted/ns/b", "127.0.0.2:6443", false},
		{"trusted/ns/b", "127.0.0.1:6443", false},
		{"trusted/ns/b", "192.168.1.10:80", false},
	}
	for _, c := range cases {
		ap := netip.MustParseAddrPort(c.addr)
		err := d.Check(c.backend, ap.Addr(), ap.Port())
		if (err == nil) != c.ok || err != nil && !errors.Is(err, ErrDestinationDenied) {
			t.Errorf("%s -> %s: err %v, want allowed=%v", c.backend, c.addr, err, c.ok)
		}
	}
	// The dial hook refuses what Check refuses, on the address actually dialed.
	if err := d.control("p/ns/b")("tcp", "169.254.169.254:80", nil); !errors.Is(err, ErrDestinationDenied) {
		t.Fatalf("dial control: %v", err)
	}
	var none *Destinations
	if err := none.Check("p/ns/b", netip.MustParseAddr("169.254.169.254"), 80); err != nil {
		t.Fatalf("nil policy refuses: %v", err)
	}
}
