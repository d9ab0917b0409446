package acme

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mholt/acmez/v3/acme"
	"github.com/miekg/dns"
)

// probeInterval is how often a challenge answer is checked while waiting for it to be served.
const probeInterval = 50 * time.Millisecond

// httpSolver answers HTTP-01 through the record's Gateway: Present adds the answer to what
// Amend puts in the project's snapshot and runs the controller; Wait fetches it through the
// Gateway's HTTP listeners, as the CA will, until it is served.
type httpSolver struct {
	p *Project
	w Want
}

// Present implements acmez.Solver.
func (s *httpSolver) Present(_ context.Context, chal acme.Challenge) error {
	s.p.mu.Lock()
	s.p.http01[chal.Token] = httpAnswer{record: s.w.Record, host: strings.ToLower(chal.Identifier.Value), keyAuth: chal.KeyAuthorization, gw: s.w.Gateway}
	kick := s.p.kick
	s.p.mu.Unlock()
	kick()
	return nil
}

// Wait implements acmez.Waiter: the answer is served by the Gateway (checked at its HTTP
// listeners, or, with none to reach, once it is in the applied snapshot). A Gateway that
// never serves it is reported to the CA anyway after ChallengeWait: the CA may reach it by a
// way this server cannot (a load balancer in front).
func (s *httpSolver) Wait(ctx context.Context, chal acme.Challenge) error {
	ctx, cancel := context.WithTimeout(ctx, s.p.m.opts.ChallengeWait)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var last string
	for {
		if s.served(ctx, client, chal, &last) {
			return nil
		}
		select {
		case <-ctx.Done():
			if err := context.Cause(ctx); err != nil && ctx.Err() != context.DeadlineExceeded {
				return err
			}
			s.p.m.opts.Logger.Warn("acme: the Gateway does not serve the HTTP-01 answer; asking the CA anyway", "project", s.p.name, "name", chal.Identifier.Value, "last", last)
			return nil
		case <-time.After(probeInterval):
		}
	}
}

func (s *httpSolver) served(ctx context.Context, client *http.Client, chal acme.Challenge, last *string) bool {
	if len(s.w.Probe) == 0 {
		s.p.mu.Lock()
		ok := s.p.amended[chal.Token]
		s.p.mu.Unlock()
		if ok {
			time.Sleep(250 * time.Millisecond) // the snapshot is applied right after Amend
		}
		return ok
	}
	for _, addr := range s.w.Probe {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+chal.HTTP01ResourcePath(), nil)
		if err != nil {
			return false
		}
		req.Host = chal.Identifier.Value
		resp, err := client.Do(req)
		if err != nil {
			*last = err.Error()
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == chal.KeyAuthorization {
			return true
		}
		*last = fmt.Sprintf("%s answered %d", addr, resp.StatusCode)
	}
	return false
}

// CleanUp implements acmez.Solver.
func (s *httpSolver) CleanUp(_ context.Context, chal acme.Challenge) error {
	s.p.mu.Lock()
	delete(s.p.http01, chal.Token)
	kick := s.p.kick
	s.p.mu.Unlock()
	kick()
	return nil
}

// dnsSolver answers DNS-01 with a TXT record in the project's zone: Present adds it to what
// the domain reconciler serves (TXT) and runs the controller; Wait asks the server's own DNS
// server until it answers with it.
type dnsSolver struct {
	p *Project
	w Want
}

// Present implements acmez.Solver.
func (s *dnsSolver) Present(_ context.Context, chal acme.Challenge) error {
	name := dns.CanonicalName(chal.DNS01TXTRecordName())
	s.p.mu.Lock()
	s.p.dns01[name] = append(s.p.dns01[name], chal.DNS01KeyAuthorization())
	kick := s.p.kick
	s.p.mu.Unlock()
	kick()
	return nil
}

// Wait implements acmez.Waiter.
func (s *dnsSolver) Wait(ctx context.Context, chal acme.Challenge) error {
	ctx, cancel := context.WithTimeout(ctx, s.p.m.opts.ChallengeWait)
	defer cancel()
	name, want := dns.CanonicalName(chal.DNS01TXTRecordName()), chal.DNS01KeyAuthorization()
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	last := "no answer"
	for {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeTXT)
		r, _, err := c.ExchangeContext(ctx, q, s.p.m.resolver())
		switch {
		case err != nil:
			last = err.Error()
		case r.Rcode != dns.RcodeSuccess:
			last = dns.RcodeToString[r.Rcode]
		default:
			for _, rr := range r.Answer {
				if t, ok := rr.(*dns.TXT); ok && slices.Contains(t.Txt, want) {
					return nil
				}
			}
			last = "the TXT record is not served yet"
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("%s TXT is not answered by this server's DNS after %s (%s): is its zone Active?", strings.TrimSuffix(name, "."), s.p.m.opts.ChallengeWait, last)
			}
			return ctx.Err()
		case <-time.After(probeInterval):
		}
	}
}

// CleanUp implements acmez.Solver.
func (s *dnsSolver) CleanUp(_ context.Context, chal acme.Challenge) error {
	name, v := dns.CanonicalName(chal.DNS01TXTRecordName()), chal.DNS01KeyAuthorization()
	s.p.mu.Lock()
	vals := s.p.dns01[name]
	if i := slices.Index(vals, v); i >= 0 {
		vals = slices.Delete(vals, i, i+1)
	}
	if len(vals) == 0 {
		delete(s.p.dns01, name)
	} else {
		s.p.dns01[name] = vals
	}
	kick := s.p.kick
	s.p.mu.Unlock()
	kick()
	return nil
}
