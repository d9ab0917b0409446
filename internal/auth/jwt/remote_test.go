package jwt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRemoteTwoIssuers(t *testing.T) {
	sa := newJWKSServer(t, jwks(t, rs256(0, "ra")))
	sb := newJWKSServer(t, jwks(t, es256("eb")))
	v := newVerifier(t, nil,
		Provider{Name: "a", Issuer: issA, Audiences: []string{aud}, Keys: sa.remote(t, nil, RemoteConfig{})},
		Provider{Name: "b", Issuer: issB, Keys: sb.remote(t, nil, RemoteConfig{})},
	)
	now := time.Now()
	cl := func(iss string) map[string]any {
		return with(claims(iss), "iat", now.Unix(), "nbf", now.Unix(), "exp", now.Add(time.Hour).Unix())
	}
	if got := mustVerify(t, v, rs256(0, "ra").sign(t, cl(issA))); got.Provider != "a" {
		t.Errorf("provider %s", got.Provider)
	}
	if got := mustVerify(t, v, es256("eb").sign(t, cl(issB))); got.Provider != "b" {
		t.Errorf("provider %s", got.Provider)
	}
	_, err := v.Verify(context.Background(), rs256(0, "ra").sign(t, cl("https://c.example.com/")))
	wantReason(t, err, ReasonUnknownIssuer)
	if sa.hits.Load() != 1 || sb.hits.Load() != 1 {
		t.Errorf("fetches a=%d b=%d, want 1 each", sa.hits.Load(), sb.hits.Load())
	}
}

// An unknown issuer never reaches the key source: no fetch.
func TestRemoteUnknownIssuerDoesNotFetch(t *testing.T) {
	s := newJWKSServer(t, jwks(t, rs256(0, "ra")))
	v := newVerifier(t, newClock(), Provider{Name: "a", Issuer: issA, Keys: s.remote(t, nil, RemoteConfig{})})
	for i := range 20 {
		_, err := v.Verify(context.Background(), rs256(0, fmt.Sprint(i)).sign(t, claims(fmt.Sprint("https://x", i))))
		wantReason(t, err, ReasonUnknownIssuer)
	}
	if n := s.hits.Load(); n != 0 {
		t.Errorf("%d fetches", n)
	}
}

func TestRemoteCoalescesFirstFetch(t *testing.T) {
	s := newJWKSServer(t, jwks(t, es256("e")))
	s.delay = 100 * time.Millisecond
	c := newClock()
	v := newVerifier(t, c, Provider{Name: "a", Issuer: issA, Keys: s.remote(t, c, RemoteConfig{})})
	tok := es256("e").sign(t, claims(issA))
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := s.hits.Load(); n != 1 {
		t.Errorf("%d fetches for 50 concurrent first uses, want 1", n)
	}
}

func TestRemoteKeyRotation(t *testing.T) {
	s := newJWKSServer(t, jwks(t, rs256(0, "k1")))
	c := newClock()
	r := s.remote(t, c, RemoteConfig{})
	v := newVerifier(t, c, Provider{Name: "a", Issuer: issA, Keys: r})
	mustVerify(t, v, rs256(0, "k1").sign(t, claims(issA)))
	if n := s.hits.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
	// The provider rotates: k2 is published and signs new tokens.
	s.set(jwks(t, rs256(1, "k2"), rs256(0, "k1")))
	c.Advance(time.Second)
	mustVerify(t, v, rs256(1, "k2").sign(t, claims(issA)))
	mustVerify(t, v, rs256(1, "k2").sign(t, with(claims(issA), "jti", "2")))
	mustVerify(t, v, rs256(0, "k1").sign(t, with(claims(issA), "jti", "3")))
	if n := s.hits.Load(); n != 2 {
		t.Errorf("%d fetches, want 2 (one refetch for the new kid)", n)
	}
}

func TestRemoteKIDFlood(t *testing.T) {
	s := newJWKSServer(t, jwks(t, rs256(0, "k1")))
	c := newClock()
	v := newVerifier(t, c, Provider{Name: "a", Issuer: issA, Keys: s.remote(t, c, RemoteConfig{})})
	mustVerify(t, v, rs256(0, "k1").sign(t, claims(issA)))
	forge := func() string {
		b := make([]byte, 8)
		rand.Read(b)
		return es256(hex.EncodeToString(b)).sign(t, claims(issA))
	}
	flood := make([]string, 1000)
	for i := range flood {
		flood[i] = forge()
	}
	start := time.Now()
	for i, tok := range flood {
		_, err := v.Verify(context.Background(), tok)
		wantReason(t, err, ReasonUnknownKID)
		if i%100 == 0 {
			c.Advance(2 * time.Second) // 1000 tokens over 20 s
		}
	}
	if n := s.hits.Load(); n > 2 {
		t.Errorf("%d fetches for 1000 random kids within 30 s, want at most 1 refetch", n)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("flood took %s", d)
	}
	// Past MinRefetch, one more unknown kid may refetch once.
	c.Advance(31 * time.Second)
	for range 10 {
		v.Verify(context.Background(), forge())
	}
	if n := s.hits.Load(); n > 3 {
		t.Errorf("%d fetches, want at most 3", n)
	}
}

func TestRemoteHangingEndpoint(t *testing.T) {
	s := newJWKSServer(t, jwks(t, rs256(0, "k1")))
	s.hang.Store(true)
	const timeout = 300 * time.Millisecond
	v := newVerifier(t, nil, Provider{Name: "a", Issuer: issA, Keys: s.remote(t, nil, RemoteConfig{Timeout: timeout})})
	tok := rs256(0, "k1").sign(t, with(claims(issA), "iat", nil, "nbf", nil, "exp", nil))
	start := time.Now()
	_, err := v.Verify(context.Background(), tok)
	el := time.Since(start)
	wantReason(t, err, ReasonJWKSUnavailable)
	if el > timeout+250*time.Millisecond {
		t.Errorf("Verify held %s with a %s timeout", el, timeout)
	}
	// The caller's own deadline is honored too.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	v2 := newVerifier(t, nil, Provider{Name: "a", Issuer: issA, Keys: s.remote(t, nil, RemoteConfig{Timeout: 5 * time.Second})})
	_, err = v2.Verify(ctx, tok)
	wantReason(t, err, ReasonJWKSUnavailable)
	if el := time.Since(start); el > time.Second {
		t.Errorf("Verify held %s past a 50ms context", el)
	}
}

func TestRemoteGrace(t *testing.T) {
	s := newJWKSServer(t, jwks(t, rs256(0, "k1")))
	c := newClock()
	r := s.remote(t, c, RemoteConfig{CacheDuration: 5 * time.Minute, Grace: 30 * time.Minute})
	v := newVerifier(t, c, Provider{Name: "a", Issuer: issA, Keys: r})
	// Long-lived tokens so only the keys' lifetime matters.
	tok := func(jti string) string {
		return rs256(0, "k1").sign(t, with(claims(issA), "exp", t0.Add(24*time.Hour).Unix(), "jti", jti))
	}
	cached := tok("cached")
	mustVerify(t, v, cached)
	s.status.Store(http.StatusServiceUnavailable) // the endpoint goes down

	c.Advance(5*time.Minute + time.Second) // stale: a background refresh starts and fails
	mustVerify(t, v, tok("a"))
	r.waitIdle()
	if r.Health() == nil {
		t.Error("Health is nil after a failed refresh")
	}
	for i, d := range []time.Duration{10 * time.Minute, 10 * time.Minute, 9*time.Minute + 50*time.Second} {
		c.Advance(d)
		mustVerify(t, v, tok(fmt.Sprint("b", i)))
		r.waitIdle()
	}
	mustVerify(t, v, cached)    // cache hit (re-verified past the 5-min TTL, still with the old keys)
	c.Advance(10 * time.Second) // now exactly CacheDuration+Grace after the fetch
	_, err := v.Verify(context.Background(), tok("c"))
	wantReason(t, err, ReasonJWKSUnavailable)
	_, err = v.Verify(context.Background(), cached) // no cache hit with dropped keys
	wantReason(t, err, ReasonJWKSUnavailable)
	if !errors.Is(r.Health(), &Error{Reason: ReasonJWKSUnavailable}) {
		t.Errorf("Health = %v", r.Health())
	}
	// Attempts backed off: far fewer fetches than Verify calls.
	if n := s.hits.Load(); n > 12 {
		t.Errorf("%d fetches", n)
	}
	// The endpoint recovers: after the backoff the keys come back.
	s.status.Store(0)
	c.Advance(DefaultMinRefetch)
	mustVerify(t, v, tok("d"))
	if r.Health() != nil {
		t.Errorf("Health = %v after recovery", r.Health())
	}
}

func TestRemoteBadDocumentKeepsKeys(t *testing.T) {
	for name, bad := range map[string]func(s *jwksServer){
		"status 500":     func(s *jwksServer) { s.status.Store(500) },
		"status 404":     func(s *jwksServer) { s.status.Store(404) },
		"not JSON":       func(s *jwksServer) { s.set([]byte("<html>oops</html>")) },
		"no keys":        func(s *jwksServer) { s.set([]byte(`{"keys":[]}`)) },
		"only oct keys":  func(s *jwksServer) { s.set(jwks(t, signer{key: hmacSecret, kid: "h"})) },
		"too large":      func(s *jwksServer) { s.set([]byte(`{"keys":[],"x":"` + strings.Repeat("a", MaxJWKSSize) + `"}`)) },
		"truncated JSON": func(s *jwksServer) { d := jwks(t, rs256(1, "k2")); s.set(d[:len(d)/2]) },
	} {
		t.Run(name, func(t *testing.T) {
			s := newJWKSServer(t, jwks(t, rs256(0, "k1")))
			c := newClock()
			r := s.remote(t, c, RemoteConfig{})
			v := newVerifierOpts(t, Options{CacheSize: -1, Now: c.Now}, Provider{Name: "a", Issuer: issA, Keys: r})
			tok := rs256(0, "k1").sign(t, claims(issA))
			mustVerify(t, v, tok)
			bad(s)
			c.Advance(DefaultCacheDuration) // refresh due
			mustVerify(t, v, tok)
			r.waitIdle()
			if r.Health() == nil {
				t.Fatal("Health nil after a bad document")
			}
			mustVerify(t, v, tok)
			if r.Current(c.Now()) == nil {
				t.Error("previous keys dropped")
			}
		})
	}
}

func TestRemoteBackgroundRefresh(t *testing.T) {
	s := newJWKSServer(t, jwks(t, rs256(0, "k1")))
	c := newClock()
	r := s.remote(t, c, RemoteConfig{CacheDuration: time.Minute})
	v := newVerifier(t, c, Provider{Name: "a", Issuer: issA, Keys: r})
	tok := rs256(0, "k1").sign(t, claims(issA))
	mustVerify(t, v, tok)
	before := r.Current(c.Now())

	// Same document after CacheDuration: the set (and so the cache entries) stays.
	c.Advance(time.Minute)
	mustVerify(t, v, rs256(0, "k1").sign(t, with(claims(issA), "jti", "x")))
	r.waitIdle()
	if s.hits.Load() != 2 || r.Current(c.Now()) != before {
		t.Fatalf("hits=%d, set replaced=%v", s.hits.Load(), r.Current(c.Now()) != before)
	}
	checks := v.sigChecks.Load()
	mustVerify(t, v, tok)
	if v.sigChecks.Load() != checks {
		t.Error("an unchanged refresh invalidated the cache")
	}

	// A slow endpoint does not delay requests once keys are cached.
	s.set(jwks(t, rs256(1, "k2")))
	s.delay = 300 * time.Millisecond
	c.Advance(time.Minute)
	start := time.Now()
	mustVerify(t, v, rs256(0, "k1").sign(t, with(claims(issA), "jti", "y")))
	if el := time.Since(start); el > 200*time.Millisecond {
		t.Errorf("Verify waited %s for a background refresh", el)
	}
	r.waitIdle()
	// The new document replaced the set: k1 is gone, cached k1 tokens are re-verified and fail.
	_, err := v.Verify(context.Background(), tok)
	wantReason(t, err, ReasonUnknownKID)
	mustVerify(t, v, rs256(1, "k2").sign(t, claims(issA)))
}

func TestRemoteBackoff(t *testing.T) {
	s := newJWKSServer(t, jwks(t, rs256(0, "k1")))
	s.status.Store(500)
	c := newClock()
	r := s.remote(t, c, RemoteConfig{CacheDuration: time.Minute})
	v := newVerifier(t, c, Provider{Name: "a", Issuer: issA, Keys: r})
	tok := rs256(0, "k1").sign(t, with(claims(issA), "exp", nil))
	// No keys at all: every call in the backoff window fails fast without fetching.
	var attempts []int64
	for range 120 { // two minutes in 1 s steps
		_, err := v.Verify(context.Background(), tok)
		wantReason(t, err, ReasonJWKSUnavailable)
		attempts = append(attempts, s.hits.Load())
		c.Advance(time.Second)
	}
	// 1, 2, 4, 8, 16, 30 (MinRefetch cap without keys), 30, ... => fetches at 0,1,3,7,15,31,61,91
	if n := s.hits.Load(); n < 7 || n > 9 {
		t.Errorf("%d fetches in 2 minutes of failures, want about 8", n)
	}
	if got := backoff(1, int64(time.Minute)); got != int64(time.Second) {
		t.Errorf("backoff(1) = %v", time.Duration(got))
	}
	if got := backoff(100, int64(time.Minute)); got != int64(time.Minute) {
		t.Errorf("backoff(100) = %v", time.Duration(got))
	}
}

func TestRemoteClose(t *testing.T) {
	s := newJWKSServer(t, jwks(t, rs256(0, "k1")))
	r := s.remote(t, nil, RemoteConfig{})
	if _, err := r.Keys(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	r.Close()
	r.Close()
	if _, err := r.Keys(context.Background(), ""); err == nil {
		t.Error("Keys after Close succeeded")
	}
	if r.Current(time.Now()) != nil || r.Health() == nil {
		t.Error("closed Remote still has keys or reports healthy")
	}
	// Close cancels a hanging fetch.
	s2 := newJWKSServer(t, nil)
	s2.hang.Store(true)
	r2 := s2.remote(t, nil, RemoteConfig{Timeout: time.Minute})
	go r2.Keys(context.Background(), "")
	for s2.hits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	r2.Close()
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Close took %s", el)
	}
}

func TestNewRemoteRejects(t *testing.T) {
	for name, cfg := range map[string]RemoteConfig{
		"no URI":           {},
		"relative":         {URI: "/jwks.json"},
		"ftp":              {URI: "ftp://x/jwks"},
		"short cache":      {URI: "https://x/jwks", CacheDuration: 10 * time.Second},
		"negative timout":  {URI: "https://x/jwks", Timeout: -1},
		"negative refetch": {URI: "https://x/jwks", MinRefetch: -1},
	} {
		if _, err := NewRemote(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestRemoteConcurrentRefresh verifies from several goroutines while the clock runs past
// CacheDuration again and again and the document alternates between two key sets that both
// hold the signing key: every Verify succeeds and fetches stay bounded.
func TestRemoteConcurrentRefresh(t *testing.T) {
	docs := [][]byte{jwks(t, es256("e")), jwks(t, es256("e"), rs256(0, "r"))}
	s := newJWKSServer(t, docs[0])
	c := newClock()
	r := s.remote(t, c, RemoteConfig{CacheDuration: 30 * time.Second})
	v := newVerifierOpts(t, Options{CacheSize: 16, CacheTTL: time.Second, Now: c.Now}, Provider{Name: "a", Issuer: issA, Keys: r})
	toks := make([]string, 32)
	for i := range toks {
		toks[i] = es256("e").sign(t, with(claims(issA), "jti", i, "exp", t0.Add(24*time.Hour).Unix()))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			c.Advance(5 * time.Second)
			if i%10 == 0 {
				s.set(docs[(i/10)%2])
			}
		}
	}()
	var vg sync.WaitGroup
	for g := range 4 {
		vg.Add(1)
		go func() {
			defer vg.Done()
			for i := range 300 {
				if _, err := v.Verify(context.Background(), toks[(i+g)%len(toks)]); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	vg.Wait()
	close(stop)
	wg.Wait()
	r.waitIdle()
	if r.Health() != nil {
		t.Errorf("Health = %v", r.Health())
	}
	// At most one refresh per CacheDuration of (fake) time, plus the first fetch.
	if max := int64(c.Now().Sub(t0)/(30*time.Second)) + 2; s.hits.Load() > max {
		t.Errorf("%d fetches over %s, want at most %d", s.hits.Load(), c.Now().Sub(t0), max)
	}
}
