package gateway

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"

	corev1a3 "apoxy.dev/apoxy/api/core/v1alpha3"
	"apoxy.dev/apoxy/internal/acme"
	"apoxy.dev/apoxy/internal/edgetest"
	"apoxy.dev/apoxy/internal/platform"
)

// syncBuffer is a log sink read while Pebble writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Renewal follows the CA's renewal info (ARI, RFC 9773). Debian's Pebble predates ARI, so this
// runs the current Pebble (v2.10, the same code as its binary: CA, validator and web front
// end) in the test process, issuing 30-second certificates: the renewal time stored with the
// certificate comes from the CA's window, the certificate is replaced before it expires, and
// the new order names the one it replaces (Pebble logs the replacement).
func TestACMERenewalInfo(t *testing.T) {
	// Pebble reads these when its validator and front end are built.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_AUTHZREUSE", "0")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	var handler atomic.Pointer[http.Handler]
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := handler.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		http.Error(w, "pebble is starting", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	apiRoots := x509.NewCertPool()
	apiRoots.AddCert(srv.Certificate())
	// The CA named by its URL, as --acme-ca gives it ("127.0.0.1:port").
	pebbleCA, err := acme.ResolveCA(srv.URL + wfe.DirectoryPath)
	if err != nil {
		t.Fatal(err)
	}
	e := edgetest.Start(t, edgetest.Options{DNS: true, ACME: platform.ACMEOptions{CAs: []acme.CA{pebbleCA}, Roots: apiRoots}})

	logs := &syncBuffer{}
	logger := log.New(logs, "pebble ", log.LstdFlags)
	_, port, _ := net.SplitHostPort(e.HTTPAddr)
	httpPort, _ := strconv.Atoi(port)
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"short": {Description: "30 seconds", ValidityPeriod: 30}})
	validator := va.New(logger, httpPort, 0, false, e.DNSAddr, store)
	front := wfe.New(logger, store, validator, authority, nil, false, false, 1, 1)
	h := front.Handler()
	handler.Store(&h)

	e.Apply(zoneAndWWW)
	var first *corev1a3.CertificateStatus
	e.WaitFor("issued", func() error {
		st, err := certificateOf(e, "www-example-com")
		if err != nil {
			return err
		}
		if st.Phase != corev1a3.DomainRecordPhaseActive || st.Certificate == nil {
			return fmt.Errorf("phase %q conditions %v", st.Phase, st.Conditions)
		}
		first = st.Certificate
		return nil
	})
	sec := e.Get("v1", "Secret", acme.CertSecretName("www-example-com"))
	var renewAfter time.Time
	anns := sec.GetAnnotations()
	if anns[acme.AnnARICheck] == "" {
		t.Errorf("no renewal-info check stored: the CA's ARI was not read (annotations %v)", anns)
	}
	renewAfter, err = time.Parse(time.RFC3339, anns[acme.AnnRenewAfter])
	// The CA's window for a 30-second certificate is its whole lifetime; the last tenth of it
	// is kept for the order, so renewal starts at least 3 s before expiry.
	if err != nil || renewAfter.After(first.NotAfter.Add(-3*time.Second)) {
		t.Errorf("renew-after %q, certificate expires %s: renewal must start 3 s before", anns[acme.AnnRenewAfter], first.NotAfter)
	}

	deadline := first.NotAfter.Add(5 * time.Second)
	for {
		st, err := certificateOf(e, "www-example-com")
		if err == nil && st.Certificate != nil && st.Certificate.Serial != first.Serial {
			// Pebble's certificates end 29 s after they are issued (to the second): the issue
			// time, not when this poll saw the status, tells whether the first one lapsed.
			issued := st.Certificate.NotAfter.Add(-29 * time.Second)
			if st.Certificate.NotAfter.Before(&first.NotAfter) || issued.After(first.NotAfter.Time) {
				t.Errorf("renewed at %s, after the first certificate expired at %s", issued.UTC(), first.NotAfter)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not renewed by %s (renew-after %s); status %+v", deadline, renewAfter, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "is a replacement of") {
		t.Errorf("the renewal order did not name the certificate it replaces; pebble's log:\n%s", logs.String())
	}
}
