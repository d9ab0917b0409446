package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	corev1a3 "apoxy.dev/apoxy/api/core/v1alpha3"
	"apoxy.dev/apoxy/internal/acme"
	"apoxy.dev/apoxy/internal/edgetest"
	"apoxy.dev/apoxy/internal/platform"
	"apoxy.dev/apoxy/internal/proxy"
)

// httpsGet makes one request through the gateway's HTTPS listener for host, verifying the
// certificate against roots; it returns the status and the serial of the certificate
// presented.
func httpsGet(client *http.Client, addr, host string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, "https://"+host+"/hello", nil)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	serial := ""
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		serial = fmt.Sprintf("%x", resp.TLS.PeerCertificates[0].SerialNumber)
	}
	return resp.StatusCode, serial, nil
}

// httpsClient reaches addr whatever the URL's host, trusting roots only.
func httpsClient(addr string, roots *x509.CertPool, keepAlive bool) *http.Client {
	d := &net.Dialer{Timeout: 2 * time.Second}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) },
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		DisableKeepAlives: !keepAlive,
		ForceAttemptHTTP2: true,
	}}
}

// zoneAndWWW is the zone example.com and www.example.com on the default Gateway, with its
// certificate validated by HTTP-01.
const zoneAndWWW = `
apiVersion: core.apoxy.dev/v1alpha3
kind: DomainZone
metadata: {name: example-com}
spec: {domainName: example.com}
---
apiVersion: core.apoxy.dev/v1alpha3
kind: DomainRecord
metadata: {name: www-example-com}
spec:
  zone: example-com
  name: www.example.com
  target: {ref: {group: gateway.apoxy.dev, kind: Gateway, name: default}}
  tls: {challenge: HTTP01}
`

// requestRenewal asks for a record's certificate to be replaced now, as `apoxy domain renew`
// does.
func requestRenewal(t *testing.T, e *edgetest.Env, name string) {
	t.Helper()
	u := e.Get("core.apoxy.dev/v1alpha3", "DomainRecord", name)
	anns := u.GetAnnotations()
	if anns == nil {
		anns = map[string]string{}
	}
	anns[acme.AnnRenew] = time.Now().UTC().Format(time.RFC3339Nano)
	u.SetAnnotations(anns)
	if _, err := e.Client.Resource(corev1a3.SchemeGroupVersion.WithResource("domainrecords")).Update(context.Background(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// certificateOf returns a record's status.certificate and TLSReady condition.
func certificateOf(e *edgetest.Env, name string) (*corev1a3.DomainRecordStatus, error) {
	u := e.Get("core.apoxy.dev/v1alpha3", "DomainRecord", name)
	if u == nil {
		return nil, fmt.Errorf("%s not found", name)
	}
	var rec corev1a3.DomainRecord
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &rec); err != nil {
		return nil, err
	}
	return &rec.Status, nil
}

// A DomainRecord targeting the default Gateway gets a certificate from a real ACME server
// (Debian's Pebble, its validator resolving through our DNS server and fetching through our
// gateway): www.example.com by HTTP-01, *.apps.example.com by DNS-01. Both go Active with
// status.certificate, the certificates are Secrets of the project, and `curl --cacert
// <Pebble's root>` succeeds through the gateway by SNI. Then a forced renewal (apoxy domain
// renew's annotation) swaps www's certificate while clients hammer it: not one request fails.
// A renewal the CA cannot do keeps the certificate serving and reports the error.
func TestACMECertificates(t *testing.T) {
	pb := edgetest.NewPebble(t)
	e := edgetest.Start(t, edgetest.Options{DNS: true, Pebble: pb})
	_, port, _ := net.SplitHostPort(e.HTTPAddr)
	httpPort, _ := strconv.Atoi(port)
	pb.Start(httpPort, e.DNSAddr)
	roots, rootPEM := pb.IssuerRoots()

	e.Apply(zoneAndWWW + `---
apiVersion: core.apoxy.dev/v1alpha3
kind: DomainRecord
metadata: {name: apps-example-com}
spec:
  zone: example-com
  name: "*.apps.example.com"
  target: {ref: {group: gateway.apoxy.dev, kind: Gateway, name: default}}
---
apiVersion: extensions.apoxy.dev/v1alpha2
kind: DirectResponse
metadata: {name: hello}
spec: {statusCode: 200, contentType: text/plain, body: {inline: "hello"}}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: hello}
spec:
  parentRefs: [{name: default}]
  rules:
  - filters: [{type: ExtensionRef, extensionRef: {group: extensions.apoxy.dev, kind: DirectResponse, name: hello}}]
`)
	began := time.Now()
	for _, name := range []string{"www-example-com", "apps-example-com"} {
		e.WaitFor(name+" Active with a certificate", func() error {
			st, err := certificateOf(e, name)
			if err != nil {
				return err
			}
			if st.Phase != corev1a3.DomainRecordPhaseActive || st.Certificate == nil {
				return fmt.Errorf("phase %q, conditions %v", st.Phase, st.Conditions)
			}
			return nil
		})
	}
	t.Logf("both certificates issued in %s", time.Since(began).Round(time.Millisecond))
	st, _ := certificateOf(e, "www-example-com")
	if c := st.Certificate; len(c.Names) != 1 || c.Names[0] != "www.example.com" || c.Issuer != "pebble" || c.CA != pb.DirURL || c.RenewAfter == nil || c.NotAfter.Before(&metav1.Time{Time: time.Now()}) {
		t.Errorf("www certificate status = %+v", c)
	}
	if c := meta.FindStatusCondition(st.Conditions, "TLSReady"); c == nil || c.Status != metav1.ConditionTrue || c.Reason != "Issued" {
		t.Errorf("TLSReady = %+v", c)
	}
	wst, _ := certificateOf(e, "apps-example-com")
	if c := wst.Certificate; len(c.Names) != 1 || c.Names[0] != "*.apps.example.com" {
		t.Errorf("wildcard certificate status = %+v", c)
	}
	sec := e.Get("v1", "Secret", acme.CertSecretName("www-example-com"))
	if sec == nil || sec.Object["type"] != "kubernetes.io/tls" {
		t.Fatalf("certificate Secret = %v", sec)
	}

	// Through the gateway, by SNI, verified against Pebble's root only.
	for _, host := range []string{"www.example.com", "x.apps.example.com"} {
		e.WaitFor(host+" served with its certificate", func() error {
			code, _, err := httpsGet(httpsClient(e.TLSAddr, roots, false), e.TLSAddr, host)
			if err != nil {
				return err
			}
			if code != 200 {
				return fmt.Errorf("status %d", code)
			}
			return nil
		})
	}
	if curl, err := exec.LookPath("curl"); err == nil {
		rootFile := filepath.Join(t.TempDir(), "pebble-root.pem")
		os.WriteFile(rootFile, rootPEM, 0o600)
		_, tlsPort, _ := net.SplitHostPort(e.TLSAddr)
		out, err := exec.Command(curl, "-sS", "--cacert", rootFile, "--resolve", "www.example.com:"+tlsPort+":127.0.0.1",
			"https://www.example.com:"+tlsPort+"/hello").CombinedOutput()
		if err != nil || string(out) != "hello" {
			t.Errorf("curl --cacert pebble-root.pem: %v: %s", err, out)
		}
	}
	// A name the record does not cover still gets the listener's own (self-signed)
	// certificate, which Pebble's root does not verify.
	if _, _, err := httpsGet(httpsClient(e.TLSAddr, roots, false), e.TLSAddr, "other.example.org"); err == nil {
		t.Error("a name without a record verified against Pebble's root")
	}

	// Forced renewal under load: new connections and kept-alive ones, both must all succeed.
	_, oldSerial, err := httpsGet(httpsClient(e.TLSAddr, roots, false), e.TLSAddr, "www.example.com")
	if err != nil {
		t.Fatal(err)
	}
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := httpsClient(e.TLSAddr, roots, i%2 == 0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, _, err := httpsGet(client, e.TLSAddr, "www.example.com")
				if err == nil && code != 200 {
					err = fmt.Errorf("status %d", code)
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	requestRenewal(t, e, "www-example-com")
	renewBegan := time.Now()
	e.WaitFor("a new certificate served", func() error {
		_, serial, err := httpsGet(httpsClient(e.TLSAddr, roots, false), e.TLSAddr, "www.example.com")
		if err != nil {
			return err
		}
		if serial == oldSerial {
			return fmt.Errorf("still serial %s", serial)
		}
		return nil
	})
	renewTook := time.Since(renewBegan)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("renewal served after %s; %d requests during it, %d failed", renewTook.Round(time.Millisecond), ok.Load(), failed.Load())
	if failed.Load() > 0 || ok.Load() < 20 {
		t.Errorf("under renewal: %d ok, %d failed (first: %v)", ok.Load(), failed.Load(), firstErr.Load())
	}
	e.WaitFor("status shows the new serial", func() error {
		st, err := certificateOf(e, "www-example-com")
		if err != nil {
			return err
		}
		if st.Certificate == nil || st.Certificate.Serial == oldSerial {
			return fmt.Errorf("status certificate %+v", st.Certificate)
		}
		return nil
	})

	// A CA that fails a renewal leaves the certificate serving: status keeps it, with the
	// error, and TLSReady stays True.
	st, _ = certificateOf(e, "www-example-com")
	served := st.Certificate.Serial
	pb.Stop()
	requestRenewal(t, e, "www-example-com")
	e.WaitFor("the failed renewal reported", func() error {
		st, err := certificateOf(e, "www-example-com")
		if err != nil {
			return err
		}
		if st.Certificate == nil || st.Certificate.LastError == "" {
			return fmt.Errorf("certificate %+v", st.Certificate)
		}
		if c := meta.FindStatusCondition(st.Conditions, "TLSReady"); st.Phase != corev1a3.DomainRecordPhaseActive || c == nil || c.Status != metav1.ConditionTrue || st.Certificate.Serial != served {
			return fmt.Errorf("phase %q TLSReady %+v serial %s", st.Phase, c, st.Certificate.Serial)
		}
		return nil
	})
	if _, serial, err := httpsGet(httpsClient(e.TLSAddr, roots, false), e.TLSAddr, "www.example.com"); err != nil || serial != served {
		t.Errorf("after a failed renewal: serial %s (want %s), err %v", serial, served, err)
	}

	// Deleting a record deletes its certificate.
	e.Delete("core.apoxy.dev/v1alpha3", "DomainRecord", "apps-example-com")
	e.WaitFor("the wildcard's Secret deleted", func() error {
		if e.Get("v1", "Secret", acme.CertSecretName("apps-example-com")) != nil {
			return fmt.Errorf("still there")
		}
		return nil
	})
}

// Orders fall back to the next CA when one fails (the first here is not listening), and a
// challenge the CA cannot validate is reported with the CA's own error and retried later:
// fail.example.com targets a Gateway whose HTTP listener is not on the port Pebble fetches
// from, so Pebble gets the default Gateway's 404 for the token.
func TestACMEFallbackAndFailure(t *testing.T) {
	pb := edgetest.NewPebble(t)
	dead := fmt.Sprintf("https://127.0.0.1:%d/dir", freeTCPPort(t))
	e := edgetest.Start(t, edgetest.Options{DNS: true, Pebble: pb, ACME: platform.ACMEOptions{CAs: []acme.CA{{Name: "dead", URL: dead}}}})
	_, port, _ := net.SplitHostPort(e.HTTPAddr)
	httpPort, _ := strconv.Atoi(port)
	pb.Start(httpPort, e.DNSAddr)
	e.Apply(fmt.Sprintf(`
apiVersion: core.apoxy.dev/v1alpha3
kind: DomainZone
metadata: {name: example-com}
spec: {domainName: example.com}
---
apiVersion: gateway.apoxy.dev/v1
kind: Gateway
metadata: {name: side}
spec:
  gatewayClassName: apoxy
  listeners: [{name: http, protocol: HTTP, port: %d}]
---
apiVersion: core.apoxy.dev/v1alpha3
kind: DomainRecord
metadata: {name: ok-example-com}
spec:
  zone: example-com
  name: ok.example.com
  target: {ref: {group: gateway.apoxy.dev, kind: Gateway, name: default}}
  tls: {challenge: HTTP01}
---
apiVersion: core.apoxy.dev/v1alpha3
kind: DomainRecord
metadata: {name: fail-example-com}
spec:
  zone: example-com
  name: fail.example.com
  target: {ref: {group: gateway.apoxy.dev, kind: Gateway, name: side}}
  tls: {challenge: HTTP01}
`, freeTCPPort(t)))
	e.WaitFor("ok.example.com issued by the second CA", func() error {
		st, err := certificateOf(e, "ok-example-com")
		if err != nil {
			return err
		}
		if st.Phase != corev1a3.DomainRecordPhaseActive || st.Certificate == nil || st.Certificate.Issuer != "pebble" {
			return fmt.Errorf("phase %q certificate %+v conditions %v", st.Phase, st.Certificate, st.Conditions)
		}
		return nil
	})
	e.WaitFor("fail.example.com reports the CA's error", func() error {
		st, err := certificateOf(e, "fail-example-com")
		if err != nil {
			return err
		}
		c := meta.FindStatusCondition(st.Conditions, "TLSReady")
		if st.Phase != corev1a3.DomainRecordPhaseIssuing || c == nil || c.Reason != "IssueFailed" {
			return fmt.Errorf("phase %q TLSReady %+v", st.Phase, c)
		}
		t.Logf("TLSReady: %s", c.Message)
		for _, want := range []string{"dead: ", "pebble: ", "urn:ietf:params:acme:error:", "404", "next attempt at"} {
			if !strings.Contains(c.Message, want) {
				t.Errorf("TLSReady message lacks %q: %s", want, c.Message)
			}
		}
		return nil
	})
	if e.Get("v1", "Secret", acme.CertSecretName("fail-example-com")) != nil {
		t.Error("a failed order stored a certificate")
	}
	// The orders are counted by CA and result; the issued certificate's expiry and renewal
	// time are exported per record.
	families, err := proxy.MetricsGatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			seen[key] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	for _, k := range []string{
		"apoxy_acme_orders_total,ca=dead,result=failed",
		"apoxy_acme_orders_total,ca=pebble,result=issued",
		"apoxy_acme_orders_total,ca=pebble,result=failed",
		"apoxy_acme_certificate_expiry_timestamp_seconds,project=default,record=ok-example-com",
		"apoxy_acme_certificate_renewal_timestamp_seconds,project=default,record=ok-example-com",
	} {
		if seen[k] < 1 {
			t.Errorf("metric %s = %v", k, seen[k])
		}
	}
}
