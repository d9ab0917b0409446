package jwt

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestCacheHitSkipsSignature(t *testing.T) {
	c := newClock()
	v := localVerifier(t, c)
	tok := rs256(0, "ra").sign(t, claims(issA))
	first := mustVerify(t, v, tok)
	if n := v.sigChecks.Load(); n != 1 {
		t.Fatalf("first Verify made %d signature checks, want 1", n)
	}
	for range 10 {
		if got := mustVerify(t, v, tok); got != first {
			t.Fatal("cache hit returned another *Token")
		}
	}
	if n := v.sigChecks.Load(); n != 1 {
		t.Errorf("10 cached Verifies made %d signature checks in all, want 1", n)
	}
	// The hit path allocates nothing.
	if a := testing.AllocsPerRun(100, func() { v.Verify(context.Background(), tok) }); a != 0 {
		t.Errorf("cache hit allocates %.0f times", a)
	}
	// A failing token is not cached (and a different token string is a different entry).
	bad := tok[:len(tok)-2] + "AA"
	for range 3 {
		if _, err := v.Verify(context.Background(), bad); err == nil {
			t.Fatal("tampered token accepted")
		}
	}
	if n := v.sigChecks.Load(); n != 4 {
		t.Errorf("signature checks = %d, want 4 (failures are not cached)", n)
	}
	// Disabled cache.
	v2 := newVerifierOpts(t, Options{CacheSize: -1, Now: c.Now}, Provider{Name: "a", Issuer: issA, Keys: localKeys(t, rs256(0, "ra"))})
	mustVerify(t, v2, tok)
	mustVerify(t, v2, tok)
	if n := v2.sigChecks.Load(); n != 2 {
		t.Errorf("without cache: %d signature checks, want 2", n)
	}
}

func newVerifierOpts(t testing.TB, o Options, ps ...Provider) *Verifier {
	t.Helper()
	v, err := NewWithOptions(o, ps...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCacheExpiresWithToken(t *testing.T) {
	c := newClock()
	v := newVerifier(t, c, Provider{Name: "a", Issuer: issA, ClockSkew: 5 * time.Second, Keys: localKeys(t, rs256(0, "ra"))})
	tok := rs256(0, "ra").sign(t, with(claims(issA), "exp", t0.Add(10*time.Second).Unix()))
	mustVerify(t, v, tok)
	c.Advance(14 * time.Second) // exp + skew is t0+15s
	mustVerify(t, v, tok)
	if n := v.sigChecks.Load(); n != 1 {
		t.Fatalf("signature checks = %d, want 1 (cached)", n)
	}
	c.Advance(time.Second) // now exactly exp+skew: refused, as an uncached check would
	_, err := v.Verify(context.Background(), tok)
	wantReason(t, err, ReasonExpired)
	if v.cache.len() != 0 {
		t.Errorf("expired entry still cached")
	}
}

func TestCacheTTL(t *testing.T) {
	c := newClock()
	v := newVerifierOpts(t, Options{CacheTTL: time.Minute, Now: c.Now}, Provider{Name: "a", Issuer: issA, Keys: localKeys(t, rs256(0, "ra"))})
	tok := rs256(0, "ra").sign(t, with(claims(issA), "exp", nil)) // no exp: only the TTL bounds it
	mustVerify(t, v, tok)
	c.Advance(59 * time.Second)
	mustVerify(t, v, tok)
	c.Advance(time.Second)
	mustVerify(t, v, tok)
	if n := v.sigChecks.Load(); n != 2 {
		t.Errorf("signature checks = %d, want 2 (re-verified after the TTL)", n)
	}
	// The TTL is capped at MaxCacheTTL.
	if got := newTokenCache(0, time.Hour).ttl; got != int64(MaxCacheTTL) {
		t.Errorf("ttl = %v", time.Duration(got))
	}
}

func TestCacheBounded(t *testing.T) {
	c := newClock()
	const size = 128
	v := newVerifierOpts(t, Options{CacheSize: size, Now: c.Now}, Provider{Name: "a", Issuer: issA, Keys: localKeys(t, es256("e"))})
	for i := range 1000 {
		mustVerify(t, v, es256("e").sign(t, with(claims(issA), "jti", fmt.Sprint(i))))
	}
	if n := v.cache.len(); n > size+cacheShards || n == 0 {
		t.Errorf("cache holds %d entries, bound %d", n, size)
	}
	// Expired entries go first when a shard is full.
	c.Advance(2 * time.Hour)
	fresh := es256("e").sign(t, with(claims(issA), "jti", "fresh", "exp", t0.Add(3*time.Hour).Unix()))
	for i := range cacheShards * 4 {
		mustVerify(t, v, es256("e").sign(t, with(claims(issA), "jti", fmt.Sprint("late", i), "exp", t0.Add(3*time.Hour).Unix())))
	}
	mustVerify(t, v, fresh)
	if n := v.cache.len(); n > size+cacheShards {
		t.Errorf("cache holds %d entries after expiry, bound %d", n, size)
	}
}

func TestCacheInvalidatedOnKeyChange(t *testing.T) {
	// Two local sets standing for one source that switches: an entry made with the old set is
	// not served once Current reports another.
	old := localKeys(t, rs256(0, "k"))
	src := &switchSource{set: old}
	c := newClock()
	v := newVerifier(t, c, Provider{Name: "a", Issuer: issA, Keys: src})
	tok := rs256(0, "k").sign(t, claims(issA))
	mustVerify(t, v, tok)
	mustVerify(t, v, tok)
	if n := v.sigChecks.Load(); n != 1 {
		t.Fatalf("signature checks = %d, want 1", n)
	}
	src.swap(localKeys(t, rs256(1, "k"))) // key "k" rotated to another key
	_, err := v.Verify(context.Background(), tok)
	wantReason(t, err, ReasonBadSignature)
}

// switchSource is a KeySource whose set can be replaced.
type switchSource struct {
	mu  sync.Mutex
	set *KeySet
}

func (s *switchSource) Keys(context.Context, string) (*KeySet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set, nil
}

func (s *switchSource) Current(time.Time) *KeySet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set
}

func (s *switchSource) swap(k *KeySet) {
	s.mu.Lock()
	s.set = k
	s.mu.Unlock()
}

func TestCacheConcurrent(t *testing.T) {
	c := newClock()
	v := newVerifierOpts(t, Options{CacheSize: 64, Now: c.Now}, Provider{Name: "a", Issuer: issA, Keys: localKeys(t, es256("e"))})
	toks := make([]string, 200)
	for i := range toks {
		toks[i] = es256("e").sign(t, with(claims(issA), "jti", fmt.Sprint(i)))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 400 {
				tok := toks[(i*7+g)%len(toks)]
				got, err := v.Verify(context.Background(), tok)
				if err != nil || got.Claims["jti"] != fmt.Sprint((i*7+g)%len(toks)) {
					t.Errorf("Verify: %v %v", got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
