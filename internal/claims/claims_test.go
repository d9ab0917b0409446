package claims

import (
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// clock is a manual time source: each call to Now advances a second, so claims made one after
// the other have distinct, ordered seniority.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func newRegistry(t *testing.T, file string) (*Registry, *[]string) {
	t.Helper()
	var mu sync.Mutex
	var notified []string
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r, err := New(Options{File: file, Now: c.Now, Notify: func(p string) {
		mu.Lock()
		notified = append(notified, p)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	return r, &notified
}

func httpSnap(port int32, proto ir.Protocol, hosts ...string) *ir.Snapshot {
	l := &ir.Listener{Name: ir.SocketName(proto, "0.0.0.0", port), Address: "0.0.0.0", Port: port, Protocol: proto}
	for _, h := range hosts {
		l.VirtualHosts = append(l.VirtualHosts, &ir.VirtualHost{Hostname: h, Origin: ir.Origin{Kind: "Gateway", Name: "default"}})
	}
	if proto == ir.ProtocolTCP || proto == ir.ProtocolUDP {
		l.L4 = &ir.L4Route{Name: "l4"}
	}
	return &ir.Snapshot{Listeners: []*ir.Listener{l}}
}

func served(s *ir.Snapshot) []string {
	var out []string
	for _, l := range s.Listeners {
		for _, vh := range l.VirtualHosts {
			out = append(out, l.Name+" "+vh.Hostname)
		}
		if l.L4 != nil {
			out = append(out, l.Name+" "+string(l.Protocol))
		}
	}
	slices.Sort(out)
	return out
}

// TestPortTakeoverIsDenied: a project that switches a shared HTTP port to TCP gets a
// ProtocolConflict and serves nothing there; the HTTP projects keep the socket (finding F3).
func TestPortTakeoverIsDenied(t *testing.T) {
	r, _ := newRegistry(t, "")
	r.Settle("default", httpSnap(8080, ir.ProtocolHTTP, "echo.test"))
	r.Settle("aaa", httpSnap(8080, ir.ProtocolHTTP, "aaa.test"))
	got, d := r.Settle("aaa", httpSnap(8080, ir.ProtocolTCP))
	if den, ok := d.Socket("0.0.0.0:8080"); !ok || den.Reason != ProtocolConflict {
		t.Fatalf("TCP claim on the shared HTTP port: denial %+v %v, want ProtocolConflict", den, ok)
	}
	if len(got.Listeners) != 0 {
		t.Fatalf("denied socket still in the snapshot: %v", served(got))
	}
	if d := r.Decision("default"); !d.Empty() {
		t.Fatalf("default lost something: %v", d.Denials())
	}
	// Even a project older than everyone cannot take the port by changing its protocol: the
	// claim with the new protocol starts at the back.
	r2, _ := newRegistry(t, "")
	r2.Settle("old", httpSnap(8080, ir.ProtocolHTTP, "old.test"))
	r2.Settle("new", httpSnap(8080, ir.ProtocolHTTP, "new.test"))
	if _, d := r2.Settle("old", httpSnap(8080, ir.ProtocolTCP)); d.Empty() {
		t.Fatal("the senior project turned its HTTP claim into TCP and took the port")
	}
	// A TCP socket is exclusive: a second project's TCP claim is denied too.
	r3, _ := newRegistry(t, "")
	r3.Settle("a", httpSnap(9000, ir.ProtocolTCP))
	if _, d := r3.Settle("b", httpSnap(9000, ir.ProtocolTCP)); d.Empty() {
		t.Fatal("two projects share a TCP socket")
	}
}

// TestHostnamesAreFirstCome: the project that served a hostname first keeps it, whatever the
// names of the projects; the later one is denied without being told who holds it (F2).
func TestHostnamesAreFirstCome(t *testing.T) {
	r, notified := newRegistry(t, "")
	r.Settle("zzz", httpSnap(8080, ir.ProtocolHTTP, "echo.test", "*"))
	got, d := r.Settle("aaa", httpSnap(8080, ir.ProtocolHTTP, "echo.test", "mine.test", "*"))
	if want := []string{"0.0.0.0:8080 mine.test"}; !slices.Equal(served(got), want) {
		t.Fatalf("aaa serves %v, want %v", served(got), want)
	}
	den, ok := d.Name("0.0.0.0:8080", "echo.test")
	if !ok || den.Reason != HostnameConflict {
		t.Fatalf("echo.test denial = %+v %v", den, ok)
	}
	if _, ok := d.Name("0.0.0.0:8080", ""); !ok {
		t.Fatal("the catch-all of the second project is not denied")
	}
	for _, s := range []string{den.Message} {
		if contains(s, "zzz") {
			t.Fatalf("denial names the other project: %q", s)
		}
	}
	// zzz drops echo.test: aaa is notified and gets it.
	*notified = nil
	r.Settle("zzz", httpSnap(8080, ir.ProtocolHTTP, "*"))
	if !slices.Contains(*notified, "aaa") {
		t.Fatalf("aaa not notified when echo.test was released: %v", *notified)
	}
	got, _ = r.Settle("aaa", httpSnap(8080, ir.ProtocolHTTP, "echo.test", "mine.test", "*"))
	if want := []string{"0.0.0.0:8080 echo.test", "0.0.0.0:8080 mine.test"}; !slices.Equal(served(got), want) {
		t.Fatalf("after release aaa serves %v, want %v", served(got), want)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestWildcardsOverlap: a wildcard held by one project denies another's names under it, and
// a wildcard over names another project holds is denied; the catch-all overlaps only itself.
func TestWildcardsOverlap(t *testing.T) {
	cases := []struct {
		first, second string
		denied        bool
	}{
		{"*.example.com", "api.example.com", true},
		{"*.example.com", "a.b.example.com", true},
		{"api.example.com", "*.example.com", true},
		{"*.example.com", "*.api.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "*.example.org", false},
		{"*", "api.example.com", false},
		{"api.example.com", "*", false},
		{"API.Example.com", "api.example.com", true},
	}
	for _, c := range cases {
		r, _ := newRegistry(t, "")
		r.Settle("one", httpSnap(8080, ir.ProtocolHTTP, c.first))
		_, d := r.Settle("two", httpSnap(8080, ir.ProtocolHTTP, c.second))
		if d.Empty() == c.denied {
			t.Errorf("%s then %s: denied = %v, want %v", c.first, c.second, !d.Empty(), c.denied)
		}
	}
}

// TestAssignmentOverridesFirstCome: a hostname the admin assigned to a project is denied to
// every other project, however long they held it.
func TestAssignmentOverridesFirstCome(t *testing.T) {
	r, notified := newRegistry(t, "")
	r.Settle("squatter", httpSnap(8080, ir.ProtocolHTTP, "shop.example.com"))
	r.Settle("owner", httpSnap(8080, ir.ProtocolHTTP, "shop.example.com"))
	*notified = nil
	r.Assign("owner", []string{"*.example.com", "shop.example.com"})
	if !slices.Contains(*notified, "squatter") {
		t.Fatalf("squatter not notified of the assignment: %v", *notified)
	}
	_, d := r.Settle("squatter", httpSnap(8080, ir.ProtocolHTTP, "shop.example.com"))
	if den, ok := d.Name("0.0.0.0:8080", "shop.example.com"); !ok || den.Reason != HostnameAssigned {
		t.Fatalf("squatter denial = %+v %v, want HostnameAssigned", den, ok)
	}
	got, d := r.Settle("owner", httpSnap(8080, ir.ProtocolHTTP, "shop.example.com"))
	if !d.Empty() || len(served(got)) != 1 {
		t.Fatalf("owner denied %v, serves %v", d.Denials(), served(got))
	}
}

// TestSeniorityPersists: after a restart the registry remembers who came first, even when the
// junior project reports before the senior one.
func TestSeniorityPersists(t *testing.T) {
	file := filepath.Join(t.TempDir(), "claims.json")
	r, _ := newRegistry(t, file)
	r.Settle("senior", httpSnap(8080, ir.ProtocolHTTP, "echo.test"))
	r.Settle("junior", httpSnap(8080, ir.ProtocolHTTP, "echo.test"))

	r2, _ := newRegistry(t, file)
	r2.Expect(map[string]time.Time{"senior": {}, "junior": {}})
	if _, d := r2.Settle("junior", httpSnap(8080, ir.ProtocolHTTP, "echo.test")); d.Empty() {
		t.Fatal("after restart the junior project took the hostname")
	}
	if _, d := r2.Settle("senior", httpSnap(8080, ir.ProtocolHTTP, "echo.test")); !d.Empty() {
		t.Fatalf("after restart the senior project lost the hostname: %v", d.Denials())
	}
	// A deleted project's claims go with it.
	r2.Release("senior")
	if _, d := r2.Settle("junior", httpSnap(8080, ir.ProtocolHTTP, "echo.test")); !d.Empty() {
		t.Fatalf("hostname still held by a deleted project: %v", d.Denials())
	}
}

// TestFirstStartUsesProjectAge: with no record (a fresh claims file), projects that report
// in any order are ordered by their creation.
func TestFirstStartUsesProjectAge(t *testing.T) {
	r, _ := newRegistry(t, "")
	r.Expect(map[string]time.Time{"aaa": time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), "default": time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)})
	r.Settle("aaa", httpSnap(8080, ir.ProtocolHTTP, "*"))
	if _, d := r.Settle("default", httpSnap(8080, ir.ProtocolHTTP, "*")); !d.Empty() {
		t.Fatalf("the older project lost the catch-all: %v", d.Denials())
	}
	if d := r.Decision("aaa"); d.Empty() {
		t.Fatal("the younger project kept the catch-all")
	}
}

// TestHTTPSClaimsItsUDPPort: HTTPS serves HTTP/3 on the UDP port of its number, so another
// project's UDP listener there is denied; a UDP listener held first costs HTTPS only HTTP/3.
func TestHTTPSClaimsItsUDPPort(t *testing.T) {
	r, _ := newRegistry(t, "")
	https := httpSnap(8443, ir.ProtocolHTTPS, "a.test")
	https.Listeners[0].TLS = &ir.ListenerTLS{Certificates: []ir.SNICertificate{{Certificate: "c"}}}
	r.Settle("web", https)
	if _, d := r.Settle("dns", httpSnap(8443, ir.ProtocolUDP)); d.Empty() {
		t.Fatal("a UDP listener took the HTTPS listener's HTTP/3 port")
	}
	r2, _ := newRegistry(t, "")
	r2.Settle("dns", httpSnap(8443, ir.ProtocolUDP))
	got, d := r2.Settle("web", https)
	if len(got.Listeners) != 1 || !got.Listeners[0].NoHTTP3 {
		t.Fatalf("HTTPS after a UDP claim: listeners %v, denials %v; want HTTPS without HTTP/3", served(got), d.Denials())
	}
}
