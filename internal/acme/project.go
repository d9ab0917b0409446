package acme

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	corev1a3 "apoxy.dev/apoxy/api/core/v1alpha3"
	"apoxy.dev/apoxy/internal/resource"
)

// Challenge types, as DomainRecord spec.tls.challenge spells them.
const (
	HTTP01 = "HTTP01"
	DNS01  = "DNS01"
)

// Want is the certificate a DomainRecord asks for.
type Want struct {
	// Record is the DomainRecord's name; its certificate is kept in Secret CertSecretName.
	Record string
	// Name is the certificate's DNS name ("*.example.com" for a wildcard).
	Name string
	// Challenges are the challenge types to use, one per attempt, in turn (HTTP01, DNS01).
	Challenges []string
	// CA is the record's tls.certificateAuthority, tried before the server's ("" none).
	CA string
	// Gateway is the record's target: its HTTP listeners answer HTTP-01, its HTTPS
	// listeners serve the certificate.
	Gateway types.NamespacedName
	// Probe are host:port addresses of the Gateway's HTTP listeners, where an HTTP-01 answer
	// is checked to be served before the CA is asked to fetch it.
	Probe []string
	// Renew is the record's AnnRenew annotation: a value the certificate was not issued for
	// asks for a new one.
	Renew string
	// Serving: the name answers with the Gateway's addresses. Orders wait until it does.
	Serving bool
}

// Result is what a record's status says of its certificate.
type Result struct {
	// Issuing: a certificate is being obtained and none serves yet.
	Issuing bool
	// Certificate describes the certificate that serves (nil: none).
	Certificate *corev1a3.CertificateStatus
	// Ready, Reason and Message make the record's TLSReady condition.
	Ready           bool
	Reason, Message string
}

// Project holds one project's certificates: its orders in flight, their failures, renewal
// timers, and the challenge answers its Gateway and zones must serve meanwhile.
type Project struct {
	m      *Manager
	name   string
	ctx    context.Context
	cancel context.CancelFunc

	mu   sync.Mutex
	api  dynamic.Interface
	kick func()
	// wants and certs are the last Sync's, by record.
	wants  map[string]Want
	certs  map[string]*issued
	jobs   map[string]*job
	fails  map[string]*failure
	timers map[string]*timer
	// http01 are the HTTP-01 answers to serve, by token; dns01 the TXT values, by owner
	// name (canonical, with the final dot).
	http01 map[string]httpAnswer
	dns01  map[string][]string
	// amended are the tokens the last Amend put in the snapshot.
	amended  map[string]bool
	accounts map[string]acme.Account // by directory URL
}

type job struct {
	cancel context.CancelFunc
	// chal is the challenge type of an order ("" a renewal-info refresh).
	chal string
	ca   string
}

type failure struct {
	n    int
	next time.Time
	err  string
}

type timer struct {
	at time.Time
	t  *time.Timer
}

type httpAnswer struct {
	record, host, keyAuth string
	gw                    types.NamespacedName
}

func newProject(m *Manager, name string) *Project {
	ctx, cancel := context.WithCancel(context.Background())
	return &Project{
		m: m, name: name, ctx: ctx, cancel: cancel,
		wants: map[string]Want{}, certs: map[string]*issued{}, jobs: map[string]*job{},
		fails: map[string]*failure{}, timers: map[string]*timer{},
		http01: map[string]httpAnswer{}, dns01: map[string][]string{}, amended: map[string]bool{},
		accounts: map[string]acme.Account{},
	}
}

func (p *Project) stop() {
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.timers {
		t.t.Stop()
	}
}

// Sync is called on every pass of the project's controller with the records' wants and the
// project's objects: it starts the orders that are due (none missing, expired, inside the
// renewal window or asked for) and not already running or backing off, deletes the
// certificate Secrets of records gone, and returns each record's certificate status.
func (p *Project) Sync(ctx context.Context, api dynamic.Interface, set *resource.Set, wants []Want, kick func()) map[string]Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.api, p.kick = api, kick
	secrets := map[string]*corev1.Secret{}
	for _, s := range set.Secrets {
		if s.Namespace == Namespace {
			secrets[s.Name] = s
		}
	}
	now := p.m.opts.Now()
	out := make(map[string]Result, len(wants))
	seen := map[string]bool{}
	for _, w := range wants {
		seen[w.Record] = true
		p.wants[w.Record] = w
		out[w.Record] = p.syncOne(w, secrets[CertSecretName(w.Record)], now)
	}
	for rec := range p.wants {
		if !seen[rec] {
			p.forget(rec)
		}
	}
	for _, s := range secrets {
		if rec := s.Annotations[AnnRecord]; s.Labels[LabelCertificate] == "acme" && rec != "" && !seen[rec] && s.Name == CertSecretName(rec) {
			name := s.Name
			go func() {
				if err := deleteSecret(p.ctx, api, name); err != nil && p.ctx.Err() == nil {
					p.m.opts.Logger.Warn("acme: delete certificate of a record gone", "project", p.name, "secret", name, "err", err)
				}
			}()
		}
	}
	return out
}

func (p *Project) syncOne(w Want, sec *corev1.Secret, now time.Time) Result {
	cur := parseSecret(sec)
	usable := cur != nil && cur.covers(w.Name) && now.Before(cur.leaf.NotAfter)
	if usable {
		p.certs[w.Record] = cur
		p.m.metrics.expiry.WithLabelValues(p.name, w.Record).Set(float64(cur.leaf.NotAfter.Unix()))
	} else {
		delete(p.certs, w.Record)
		p.m.metrics.forgetRecord(p.name, w.Record)
	}
	if sec != nil && (cur == nil || !cur.managed) {
		// The user's own Secret: served when it fits, never replaced.
		if usable {
			return Result{Ready: true, Reason: "UserCertificate", Certificate: certStatus(cur, nil),
				Message: fmt.Sprintf("serving the certificate of Secret %s/%s (not from ACME: renew it yourself)", Namespace, sec.Name)}
		}
		return Result{Reason: "InvalidUserCertificate",
			Message: fmt.Sprintf("Secret %s/%s was not made by apoxy and holds no valid certificate for %s; delete it to have one issued", Namespace, sec.Name, w.Name)}
	}
	f := p.fails[w.Record]
	var res Result
	if usable {
		res.Certificate = certStatus(cur, f)
		res.Ready, res.Reason = true, "Issued"
		res.Message = fmt.Sprintf("certificate from %s, valid until %s; renews after %s", cur.issuer, cur.leaf.NotAfter.UTC().Format(time.RFC3339), cur.renewAfter.UTC().Format(time.RFC3339))
		p.m.metrics.nextRenew.WithLabelValues(p.name, w.Record).Set(float64(cur.renewAfter.Unix()))
	}
	if !p.m.Enabled() {
		if !usable {
			res.Reason, res.Message = "NoCertificateAuthority", "this server issues no certificates: start it with --acme-ca (letsencrypt, letsencrypt-staging or a directory URL)"
		}
		return res
	}
	due := !usable || !now.Before(cur.renewAfter) || (w.Renew != "" && w.Renew != cur.renewedFor)
	j := p.jobs[w.Record]
	switch {
	case j != nil && j.chal != "":
		if !usable {
			res.Issuing, res.Reason = true, "Issuing"
			res.Message = fmt.Sprintf("ordering a certificate for %s from %s (%s)", w.Name, j.ca, j.chal)
		}
		return res
	case j != nil:
		return res // a renewal-info refresh
	case !w.Serving && !usable:
		res.Reason, res.Message = "NameNotServed", fmt.Sprintf("the certificate is ordered once %s is served (see the Ready condition)", w.Name)
		return res
	case due && w.Serving && (f == nil || !now.Before(f.next)):
		n := 1
		if f != nil {
			n = f.n + 1
		}
		p.startOrder(w, cur, n)
		if !usable {
			j := p.jobs[w.Record]
			res.Issuing, res.Reason = true, "Issuing"
			res.Message = fmt.Sprintf("ordering a certificate for %s from %s (%s)", w.Name, j.ca, j.chal)
		}
		return res
	case due && f != nil:
		p.wake(w.Record, f.next)
		if !usable {
			res.Issuing, res.Reason = true, "IssueFailed"
			res.Message = fmt.Sprintf("attempt %d failed: %s; next attempt at %s", f.n, f.err, f.next.UTC().Format(time.RFC3339))
		}
		return res
	case usable && cur.managed && !cur.ariCheck.IsZero() && !now.Before(cur.ariCheck):
		p.startRenewalInfo(w, cur)
	case usable:
		at := cur.renewAfter
		if !cur.ariCheck.IsZero() && cur.ariCheck.Before(at) {
			at = cur.ariCheck
		}
		p.wake(w.Record, at)
	}
	return res
}

func certStatus(c *issued, f *failure) *corev1a3.CertificateStatus {
	st := &corev1a3.CertificateStatus{
		Names: slices.Clone(c.leaf.DNSNames), Issuer: c.issuer, CA: c.ca,
		Serial: fmt.Sprintf("%x", c.leaf.SerialNumber), NotAfter: metav1.NewTime(c.leaf.NotAfter.UTC()),
	}
	if st.Issuer == "" {
		st.Issuer = c.leaf.Issuer.CommonName
	}
	if c.managed {
		t := metav1.NewTime(c.renewAfter.UTC())
		st.RenewAfter = &t
	}
	if f != nil {
		st.LastError = f.err
	}
	return st
}

// forget drops a record that no longer wants a certificate.
func (p *Project) forget(rec string) {
	if j := p.jobs[rec]; j != nil {
		j.cancel()
		delete(p.jobs, rec)
	}
	if t := p.timers[rec]; t != nil {
		t.t.Stop()
		delete(p.timers, rec)
	}
	delete(p.fails, rec)
	delete(p.wants, rec)
	delete(p.certs, rec)
	p.m.metrics.forgetRecord(p.name, rec)
}

// wake makes the controller run at t (for a renewal or a retry).
func (p *Project) wake(rec string, at time.Time) {
	if t := p.timers[rec]; t != nil {
		if t.at.Equal(at) {
			return
		}
		t.t.Stop()
	}
	d := at.Sub(p.m.opts.Now())
	kick := p.kick
	p.timers[rec] = &timer{at: at, t: time.AfterFunc(max(d, 0)+time.Second, kick)}
}

// cas are the CAs to try for a record, its own first.
func (p *Project) cas(w Want) []CA {
	out := slices.Clone(p.m.opts.CAs)
	if w.CA != "" {
		if ca, err := ResolveCA(w.CA); err == nil {
			out = slices.DeleteFunc(out, func(c CA) bool { return c.URL == ca.URL })
			out = append([]CA{ca}, out...)
		}
	}
	return out
}

func (p *Project) startOrder(w Want, cur *issued, attempt int) {
	ctx, cancel := context.WithCancel(p.ctx)
	chal := w.Challenges[(attempt-1)%len(w.Challenges)]
	cas := p.cas(w)
	j := &job{cancel: cancel, chal: chal, ca: cas[0].Name}
	p.jobs[w.Record] = j
	go func() {
		defer cancel()
		err := p.order(ctx, w, cur, chal, cas)
		p.mu.Lock()
		if p.jobs[w.Record] == j {
			delete(p.jobs, w.Record)
		}
		switch {
		case ctx.Err() != nil:
		case err != nil:
			f := p.fails[w.Record]
			if f == nil {
				f = &failure{}
				p.fails[w.Record] = f
			}
			f.n++
			f.err = err.Error()
			f.next = p.m.opts.Now().Add(p.m.backoff(f.n))
			p.m.opts.Logger.Warn("acme: order failed", "project", p.name, "record", w.Record, "name", w.Name, "challenge", chal, "attempt", f.n, "next", f.next.UTC().Format(time.RFC3339), "err", err)
		default:
			delete(p.fails, w.Record)
		}
		kick := p.kick
		p.mu.Unlock()
		kick()
	}()
}

// order obtains a certificate from the first CA that issues one and stores it.
func (p *Project) order(ctx context.Context, w Want, cur *issued, chal string, cas []CA) error {
	select {
	case p.m.slots <- struct{}{}:
		defer func() { <-p.m.slots }()
	case <-ctx.Done():
		return ctx.Err()
	}
	var errs []string
	for _, ca := range cas {
		began := time.Now()
		err := p.obtain(ctx, ca, w, cur, chal)
		result := "issued"
		if err != nil {
			result = "failed"
		}
		p.m.metrics.orders.WithLabelValues(ca.Name, result).Inc()
		p.m.metrics.duration.WithLabelValues(ca.Name, result).Observe(time.Since(began).Seconds())
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		errs = append(errs, ca.Name+": "+err.Error())
	}
	return errors.New(strings.Join(errs, "; "))
}

func (p *Project) client(ca CA, solvers map[string]acmez.Solver) *acmez.Client {
	return &acmez.Client{
		Client:           &acme.Client{Directory: ca.URL, HTTPClient: p.m.client, UserAgent: "apoxy"},
		ChallengeSolvers: solvers,
	}
}

func (p *Project) obtain(ctx context.Context, ca CA, w Want, cur *issued, chal string) error {
	solvers := map[string]acmez.Solver{}
	switch chal {
	case HTTP01:
		solvers[acme.ChallengeTypeHTTP01] = &httpSolver{p: p, w: w}
	case DNS01:
		if p.m.resolver() == "" {
			return errors.New("DNS01 needs this server's DNS server (--dns-addr) to answer the challenge")
		}
		solvers[acme.ChallengeTypeDNS01] = &dnsSolver{p: p, w: w}
	}
	client := p.client(ca, solvers)
	began := p.m.opts.Now()
	acct, err := p.account(ctx, client, ca)
	if err != nil {
		return fmt.Errorf("account: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csr, err := acmez.NewCSR(key, []string{w.Name})
	if err != nil {
		return err
	}
	params, err := acmez.OrderParametersFromCSR(acct, csr)
	if err != nil {
		return err
	}
	dir, err := client.GetDirectory(ctx)
	if err != nil {
		return err
	}
	if cur != nil && cur.managed && cur.ca == ca.URL && dir.RenewalInfo != "" {
		params.Replaces = cur.leaf
	}
	chains, err := client.ObtainCertificate(ctx, params)
	if err != nil {
		var prob acme.Problem
		if errors.As(err, &prob) && prob.Type == acme.ProblemTypeAccountDoesNotExist {
			p.mu.Lock()
			delete(p.accounts, ca.URL)
			p.mu.Unlock()
		}
		return err
	}
	if len(chains) == 0 {
		return errors.New("the CA returned no certificate")
	}
	chain := chains[0].ChainPEM
	blk, _ := pem.Decode(chain)
	if blk == nil {
		return errors.New("the CA returned no PEM certificate")
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return fmt.Errorf("the CA's certificate: %w", err)
	}
	renewAfter, ariCheck := defaultRenewAfter(leaf), time.Time{}
	if dir.RenewalInfo != "" {
		renewAfter, ariCheck = p.renewalInfo(ctx, client, leaf, time.Time{})
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	ann := map[string]string{AnnRecord: w.Record, AnnCA: ca.URL, AnnIssuer: ca.Name, AnnRenewAfter: renewAfter.UTC().Format(time.RFC3339)}
	if !ariCheck.IsZero() {
		ann[AnnARICheck] = ariCheck.UTC().Format(time.RFC3339)
	}
	if w.Renew != "" {
		ann[AnnRenewedFor] = w.Renew
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: CertSecretName(w.Record), Labels: map[string]string{LabelCertificate: "acme"}, Annotations: ann},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: chain, corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})},
	}
	if err := putSecret(ctx, p.apiClient(), sec); err != nil {
		return err
	}
	p.m.opts.Logger.Info("acme: certificate issued", "project", p.name, "record", w.Record, "names", leaf.DNSNames, "ca", ca.Name, "challenge", chal,
		"serial", fmt.Sprintf("%x", leaf.SerialNumber), "notAfter", leaf.NotAfter.UTC().Format(time.RFC3339), "renewAfter", renewAfter.UTC().Format(time.RFC3339),
		"took", p.m.opts.Now().Sub(began).Round(time.Millisecond).String())
	return nil
}

// renewalInfo asks the CA when to renew (ARI): the time it selects in its window, and when to
// ask again. Without an answer the default (a third of the lifetime left) stands and it is
// asked again in an hour. A known renewal time inside an unchanged window is kept.
func (p *Project) renewalInfo(ctx context.Context, client *acmez.Client, leaf *x509.Certificate, known time.Time) (renewAfter, checkAgain time.Time) {
	now := p.m.opts.Now()
	ri, err := client.GetRenewalInfo(ctx, leaf)
	if err != nil {
		p.m.opts.Logger.Warn("acme: renewal info", "project", p.name, "names", leaf.DNSNames, "err", err)
		return orTime(known, defaultRenewAfter(leaf)), now.Add(time.Hour)
	}
	renewAfter = ri.SelectedTime
	if !known.IsZero() && !known.Before(ri.SuggestedWindow.Start) && !known.After(ri.SuggestedWindow.End) {
		renewAfter = known
	}
	// RFC 9773 lets a CA's window end at expiry (Pebble's does for short certificates), and a
	// time selected at its very end leaves no room for the order itself: the certificate
	// would lapse while it is renewed. The last tenth of the lifetime is kept for that.
	if latest := latestRenewal(leaf); renewAfter.After(latest) {
		renewAfter = latest
	}
	checkAgain = now.Add(6 * time.Hour)
	if ri.RetryAfter != nil && ri.RetryAfter.After(now) {
		checkAgain = *ri.RetryAfter
	}
	return renewAfter, checkAgain
}

func orTime(a, b time.Time) time.Time {
	if a.IsZero() {
		return b
	}
	return a
}

// startRenewalInfo refreshes a certificate's renewal time from its CA's renewal info.
func (p *Project) startRenewalInfo(w Want, cur *issued) {
	ctx, cancel := context.WithCancel(p.ctx)
	j := &job{cancel: cancel}
	p.jobs[w.Record] = j
	go func() {
		defer cancel()
		ca, _ := ResolveCA(cur.ca)
		ca.URL = cur.ca
		renewAfter, check := p.renewalInfo(ctx, p.client(ca, nil), cur.leaf, cur.renewAfter)
		sec, err := getSecret(ctx, p.apiClient(), CertSecretName(w.Record))
		if err == nil && sec != nil {
			sec.Annotations[AnnRenewAfter] = renewAfter.UTC().Format(time.RFC3339)
			sec.Annotations[AnnARICheck] = check.UTC().Format(time.RFC3339)
			err = putSecret(ctx, p.apiClient(), sec)
		}
		if err != nil && ctx.Err() == nil {
			p.m.opts.Logger.Warn("acme: store renewal info", "project", p.name, "record", w.Record, "err", err)
		}
		p.mu.Lock()
		if p.jobs[w.Record] == j {
			delete(p.jobs, w.Record)
		}
		kick := p.kick
		p.mu.Unlock()
		kick()
	}()
}

// account returns the project's account at a CA, registering its key (made once and kept
// in a Secret) on first use in this process: registering a known key returns its account.
func (p *Project) account(ctx context.Context, client *acmez.Client, ca CA) (acme.Account, error) {
	p.mu.Lock()
	acct, ok := p.accounts[ca.URL]
	p.mu.Unlock()
	if ok {
		return acct, nil
	}
	name := accountSecretName(ca.URL)
	sec, err := getSecret(ctx, p.apiClient(), name)
	if err != nil {
		return acme.Account{}, err
	}
	var key crypto.Signer
	if sec != nil {
		if blk, _ := pem.Decode(sec.Data["key.pem"]); blk != nil {
			key, _ = x509.ParseECPrivateKey(blk.Bytes)
		}
	}
	if key == nil {
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return acme.Account{}, err
		}
		der, err := x509.MarshalECPrivateKey(ek)
		if err != nil {
			return acme.Account{}, err
		}
		err = putSecret(ctx, p.apiClient(), &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelAccount: "true"}, Annotations: map[string]string{AnnCA: ca.URL, AnnIssuer: ca.Name}},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{"key.pem": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})},
		})
		if err != nil {
			return acme.Account{}, err
		}
		key = ek
	}
	req := acme.Account{TermsOfServiceAgreed: true, PrivateKey: key}
	if e := p.m.opts.Email; e != "" {
		req.Contact = []string{"mailto:" + e}
	}
	acct, err = client.NewAccount(ctx, req)
	if err != nil {
		return acme.Account{}, err
	}
	p.mu.Lock()
	p.accounts[ca.URL] = acct
	p.mu.Unlock()
	return acct, nil
}

// TXT returns the DNS-01 answers to serve, by owner name (canonical, with the final dot).
func (p *Project) TXT() map[string][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string][]string, len(p.dns01))
	for k, v := range p.dns01 {
		out[k] = slices.Clone(v)
	}
	return out
}

// apiClient is the project's API client as the last Sync gave it (orders run beside Syncs).
func (p *Project) apiClient() dynamic.Interface {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.api
}
