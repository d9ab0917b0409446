package acme

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
)

// Where a project's certificates and accounts are kept: Secrets in its namespace default.
const (
	Namespace = "default"

	// LabelCertificate marks a certificate Secret this package manages (value "acme"); its
	// DomainRecord is in AnnRecord (a record's name may be longer than a label value).
	LabelCertificate = "domains.apoxy.dev/certificate"
	// AnnRecord names the DomainRecord of a certificate Secret.
	AnnRecord = "domains.apoxy.dev/record"
	// LabelAccount marks an ACME account key Secret (value "true"; the CA is in AnnCA).
	LabelAccount = "domains.apoxy.dev/acme-account"

	// AnnCA is the directory URL that issued a certificate (or an account key is for).
	AnnCA = "domains.apoxy.dev/ca"
	// AnnIssuer is the CA's short name.
	AnnIssuer = "domains.apoxy.dev/issuer"
	// AnnRenewAfter is when the certificate is renewed (RFC 3339).
	AnnRenewAfter = "domains.apoxy.dev/renew-after"
	// AnnARICheck is when the CA's renewal info is next fetched (RFC 3339); absent when the
	// CA publishes none.
	AnnARICheck = "domains.apoxy.dev/ari-check-after"
	// AnnRenewedFor is the record's AnnRenew value the certificate was issued for.
	AnnRenewedFor = "domains.apoxy.dev/renewed-for"
	// AnnRenew, on a DomainRecord, asks for a new certificate now (apoxy domain renew sets it
	// to the time): the certificate is replaced once the new one is issued.
	AnnRenew = "domains.apoxy.dev/renew"
)

var secretsGVR = corev1.SchemeGroupVersion.WithResource("secrets")

// CertSecretName is the Secret holding a DomainRecord's certificate.
func CertSecretName(record string) string { return record + "-tls" }

// accountSecretName is the Secret holding a project's account key at one CA.
func accountSecretName(caURL string) string {
	h := sha256.Sum256([]byte(caURL))
	return "acme-account-" + hex.EncodeToString(h[:5])
}

// issued is a certificate Secret, parsed.
type issued struct {
	certPEM, keyPEM []byte
	leaf            *x509.Certificate
	// managed: made by this package (else the user's own, which is served but never renewed).
	managed    bool
	ca, issuer string
	renewAfter time.Time
	ariCheck   time.Time
	renewedFor string
}

// parseSecret reads a certificate Secret; nil when it holds no usable certificate.
func parseSecret(s *corev1.Secret) *issued {
	if s == nil || s.Type != corev1.SecretTypeTLS {
		return nil
	}
	certPEM, keyPEM := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	blk, _ := pem.Decode(certPEM)
	if blk == nil || len(keyPEM) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil
	}
	c := &issued{certPEM: certPEM, keyPEM: keyPEM, leaf: leaf}
	if s.Labels[LabelCertificate] == "acme" {
		c.managed = true
		c.ca, c.issuer, c.renewedFor = s.Annotations[AnnCA], s.Annotations[AnnIssuer], s.Annotations[AnnRenewedFor]
		c.renewAfter, _ = time.Parse(time.RFC3339, s.Annotations[AnnRenewAfter])
		c.ariCheck, _ = time.Parse(time.RFC3339, s.Annotations[AnnARICheck])
	}
	if c.renewAfter.IsZero() {
		c.renewAfter = defaultRenewAfter(leaf)
	}
	return c
}

// defaultRenewAfter is when a third of the certificate's lifetime is left.
func defaultRenewAfter(leaf *x509.Certificate) time.Time {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return leaf.NotBefore.Add(life * 2 / 3)
}

// latestRenewal is the latest a renewal starts, whatever the CA suggests: a tenth of the
// lifetime before expiry, time for the order, its retries and a lapse-free swap.
func latestRenewal(leaf *x509.Certificate) time.Time {
	return leaf.NotAfter.Add(-leaf.NotAfter.Sub(leaf.NotBefore) / 10)
}

// covers reports whether the certificate is for name.
func (c *issued) covers(name string) bool {
	for _, n := range c.leaf.DNSNames {
		if n == name {
			return true
		}
	}
	return false
}

func getSecret(ctx context.Context, api dynamic.Interface, name string) (*corev1.Secret, error) {
	u, err := api.Resource(secretsGVR).Namespace(Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s corev1.Secret
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// putSecret creates the Secret or replaces the stored one's type, labels, annotations and
// data (retrying on conflicts).
func putSecret(ctx context.Context, api dynamic.Interface, s *corev1.Secret) error {
	res := api.Resource(secretsGVR).Namespace(Namespace)
	for attempt := 0; ; attempt++ {
		cur, err := getSecret(ctx, api, s.Name)
		if err != nil {
			return err
		}
		next := s.DeepCopy()
		next.Namespace = Namespace
		next.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}
		if cur != nil {
			next.ResourceVersion = cur.ResourceVersion
			next.UID = cur.UID
		}
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(next)
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{Object: obj}
		if cur == nil {
			_, err = res.Create(ctx, u, metav1.CreateOptions{FieldManager: "apoxy-acme"})
		} else {
			_, err = res.Update(ctx, u, metav1.UpdateOptions{FieldManager: "apoxy-acme"})
		}
		switch {
		case err == nil:
			return nil
		case (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < 5:
			continue
		default:
			return fmt.Errorf("writing Secret %s/%s: %w", Namespace, s.Name, err)
		}
	}
}

func deleteSecret(ctx context.Context, api dynamic.Interface, name string) error {
	err := api.Resource(secretsGVR).Namespace(Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
