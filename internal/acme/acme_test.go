package acme

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/pki"
	"apoxy.dev/apoxy/internal/resource"
	"apoxy.dev/apoxy/internal/status"
)

func TestParseCAs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "", want: nil},
		{in: "off", want: nil},
		{in: "letsencrypt", want: []string{LetsEncrypt}},
		{in: "letsencrypt-staging, https://ca.example/dir", want: []string{LetsEncryptStaging, "https://ca.example/dir"}},
		{in: "http://ca.example/dir", err: "is not a CA"},
		{in: "zerossl", err: "is not a CA"},
	} {
		cas, err := ParseCAs(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseCAs(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		var got []string
		for _, c := range cas {
			got = append(got, c.URL)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") || err != nil {
			t.Errorf("ParseCAs(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	m := New(Options{RetryBase: time.Minute, RetryMax: 10 * time.Minute})
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, m.backoff(n))
	}
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute, 10 * time.Minute}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoff = %v, want %v", got, want)
		}
	}
}

// testSet is a project with the default Gateway (HTTP on 80, HTTPS on 443 with the fallback
// certificate) and a certificate Secret issued for www.example.com.
func testSet(t *testing.T, certName string) (*resource.Set, *ir.Snapshot, map[status.Key][]string) {
	t.Helper()
	host := gwapiv1.Hostname("*.example.com")
	gw := &gwapiv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "default"}, Spec: gwapiv1.GatewaySpec{Listeners: []gwapiv1.Listener{
		{Name: "http", Protocol: gwapiv1.HTTPProtocolType, Port: 80},
		{Name: "https", Protocol: gwapiv1.HTTPSProtocolType, Port: 443},
		{Name: "other", Protocol: gwapiv1.HTTPSProtocolType, Port: 8443, Hostname: &host},
	}}}
	certPEM, keyPEM, err := pki.SelfSigned("www", []string{"www.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: certName, Labels: map[string]string{LabelCertificate: "acme"},
		Annotations: map[string]string{AnnRecord: "www", AnnCA: "https://ca.example/dir", AnnIssuer: "ca.example"}},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}}
	set := &resource.Set{Gateways: []*gwapiv1.Gateway{gw}, Secrets: []*corev1.Secret{sec}}
	userRoute := &ir.Route{Name: "user", Match: ir.Match{PathType: ir.PathPrefix, Path: "/"}, DirectResponse: &ir.DirectResponse{StatusCode: 200}}
	snap := &ir.Snapshot{
		Listeners: []*ir.Listener{
			{Name: "127.0.0.1:80", Address: "127.0.0.1", Port: 80, Protocol: ir.ProtocolHTTP, VirtualHosts: []*ir.VirtualHost{
				{Hostname: "*", Routes: []*ir.Route{userRoute}},
			}},
			{Name: "127.0.0.1:443", Address: "127.0.0.1", Port: 443, Protocol: ir.ProtocolHTTPS, TLS: &ir.ListenerTLS{Certificates: []ir.SNICertificate{{Hostname: "", Certificate: "fallback"}}}},
			{Name: "127.0.0.1:8443", Address: "127.0.0.1", Port: 8443, Protocol: ir.ProtocolHTTPS, TLS: &ir.ListenerTLS{Certificates: []ir.SNICertificate{{Hostname: "*.example.com", Certificate: "fallback"}}}},
		},
		Certificates: []*ir.Certificate{{Name: "fallback", CertPEM: certPEM, KeyPEM: keyPEM}},
	}
	return set, snap, map[status.Key][]string{status.KeyOf("default", "default"): {"127.0.0.1"}}
}

// Amend attaches a record's certificate by SNI to every HTTPS listener of its Gateway whose
// hostname covers the name, and puts a pending HTTP-01 answer before every route of the
// Gateway's HTTP listener for that host; the snapshot stays valid.
func TestAmend(t *testing.T) {
	set, snap, binds := testSet(t, CertSecretName("www"))
	m := New(Options{})
	p := m.Project("p1")
	w := Want{Record: "www", Name: "www.example.com", Gateway: types.NamespacedName{Namespace: "default", Name: "default"}, Challenges: []string{HTTP01}}
	p.wants["www"] = w
	p.certs["www"] = parseSecret(set.Secrets[0])
	p.http01["tok"] = httpAnswer{record: "www", host: "www.example.com", keyAuth: "tok.key", gw: w.Gateway}
	p.Amend(set, snap, binds, "p1")

	certName := "secret/p1/default/www-tls"
	for _, l := range snap.Listeners[1:] {
		found := false
		for _, e := range l.TLS.Certificates {
			if e.Hostname == "www.example.com" && e.Certificate == certName {
				found = true
			}
		}
		if !found {
			t.Errorf("listener %s: certificates %v lack www.example.com", l.Name, l.TLS.Certificates)
		}
	}
	if n := len(snap.Certificates); n != 2 || snap.Certificates[1].Name != certName {
		t.Errorf("certificates = %v", snap.Certificates)
	}
	vhs := snap.Listeners[0].VirtualHosts
	if len(vhs) != 2 || vhs[0].Hostname != "www.example.com" {
		t.Fatalf("virtual hosts = %+v", vhs)
	}
	r := vhs[0].Routes[0]
	if r.Match.Path != "/.well-known/acme-challenge/tok" || r.Match.PathType != ir.PathExact || r.DirectResponse.Body != "tok.key" {
		t.Errorf("challenge route = %+v", r)
	}
	if !p.amended["tok"] {
		t.Error("token not marked amended")
	}
	snap.SetVersion()
	if err := snap.Validate(); err != nil {
		t.Fatal(err)
	}

	// A listener that already has a certificate for exactly the name keeps it.
	set, snap, binds = testSet(t, CertSecretName("www"))
	snap.Listeners[1].TLS.Certificates = append(snap.Listeners[1].TLS.Certificates, ir.SNICertificate{Hostname: "www.example.com", Certificate: "fallback"})
	p.Amend(set, snap, binds, "p1")
	for _, e := range snap.Listeners[1].TLS.Certificates {
		if e.Certificate == certName {
			t.Errorf("the user's certificate for the name was joined by ours: %v", snap.Listeners[1].TLS.Certificates)
		}
	}
	// Once the challenge is cleaned up, nothing of it remains in the next snapshot.
	delete(p.http01, "tok")
	set, snap, binds = testSet(t, CertSecretName("www"))
	p.Amend(set, snap, binds, "p1")
	if len(snap.Listeners[0].VirtualHosts) != 1 || p.amended["tok"] {
		t.Errorf("after clean-up: virtual hosts %+v", snap.Listeners[0].VirtualHosts)
	}
}

// Sync reports a certificate without a CA configured, a user's own Secret, and one of ours
// that serves; it starts no order when no CA is configured.
func TestSyncStatus(t *testing.T) {
	set, _, _ := testSet(t, CertSecretName("www"))
	w := Want{Record: "www", Name: "www.example.com", Challenges: []string{HTTP01}, Serving: true}
	noop := func() {}

	p := New(Options{}).Project("p1")
	res := p.Sync(t.Context(), nil, set, []Want{w, {Record: "api", Name: "api.example.com", Challenges: []string{HTTP01}, Serving: true}}, noop)
	if r := res["www"]; !r.Ready || r.Reason != "Issued" || r.Certificate == nil || r.Certificate.Names[0] != "www.example.com" || r.Certificate.RenewAfter == nil {
		t.Errorf("www = %+v", r)
	}
	if r := res["api"]; r.Ready || r.Reason != "NoCertificateAuthority" || r.Issuing {
		t.Errorf("api = %+v", r)
	}
	if len(p.jobs) != 0 {
		t.Errorf("jobs started without a CA: %v", p.jobs)
	}

	// The same Secret without our label is the user's: served, never renewed.
	delete(set.Secrets[0].Labels, LabelCertificate)
	res = p.Sync(t.Context(), nil, set, []Want{w}, noop)
	if r := res["www"]; !r.Ready || r.Reason != "UserCertificate" {
		t.Errorf("user's Secret = %+v", r)
	}
	// A user's Secret for another name is reported, not replaced.
	w.Name = "other.example.com"
	res = p.Sync(t.Context(), nil, set, []Want{w}, noop)
	if r := res["www"]; r.Ready || r.Reason != "InvalidUserCertificate" {
		t.Errorf("user's Secret for another name = %+v", r)
	}
}
