package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// t0 is the tests' fixed "now".
var t0 = time.Unix(1_700_000_000, 0)

// fakeClock is an injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Real keys, generated once per test binary (RSA generation is slow).
var (
	rsaKeys = [3]func() *rsa.PrivateKey{
		sync.OnceValue(func() *rsa.PrivateKey { return genRSA(2048) }),
		sync.OnceValue(func() *rsa.PrivateKey { return genRSA(2048) }),
		sync.OnceValue(func() *rsa.PrivateKey { return genRSA(2048) }),
	}
	ecKeys = map[elliptic.Curve]func() *ecdsa.PrivateKey{
		elliptic.P256(): sync.OnceValue(func() *ecdsa.PrivateKey { return genEC(elliptic.P256()) }),
		elliptic.P384(): sync.OnceValue(func() *ecdsa.PrivateKey { return genEC(elliptic.P384()) }),
		elliptic.P521(): sync.OnceValue(func() *ecdsa.PrivateKey { return genEC(elliptic.P521()) }),
	}
	edKey = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
	hmacSecret = []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
)

func genRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func genEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func rsaKey(i int) *rsa.PrivateKey             { return rsaKeys[i]() }
func ecKey(c elliptic.Curve) *ecdsa.PrivateKey { return ecKeys[c]() }

// signer signs tokens with one private key.
type signer struct {
	alg jose.SignatureAlgorithm
	key any // private key or HMAC secret
	kid string
}

// sign returns a compact JWT with claims; header fields in extra are added.
func (s signer) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if s.kid != "" {
		opts = opts.WithHeader("kid", s.kid)
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: s.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := sg.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// public returns the JWK of s's public key (or its secret, for HMAC).
func (s signer) public() jose.JSONWebKey {
	var pub any
	switch k := s.key.(type) {
	case *rsa.PrivateKey:
		pub = &k.PublicKey
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	case ed25519.PrivateKey:
		pub = k.Public()
	case []byte:
		pub = k
	}
	return jose.JSONWebKey{Key: pub, KeyID: s.kid, Use: "sig"}
}

// jwks builds a JWKS document of the signers' public keys.
func jwks(t testing.TB, ss ...signer) []byte {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, s := range ss {
		set.Keys = append(set.Keys, s.public())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func localKeys(t testing.TB, ss ...signer) *KeySet {
	t.Helper()
	ks, err := ParseJWKS(jwks(t, ss...))
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// claims returns standard claims for iss at t0, valid for an hour.
func claims(iss string) map[string]any {
	return map[string]any{
		"iss": iss,
		"sub": "user-1",
		"aud": "https://api.example.com",
		"iat": t0.Unix(),
		"nbf": t0.Unix(),
		"exp": t0.Add(time.Hour).Unix(),
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// rawToken assembles a token from raw header and payload JSON and a signature.
func rawToken(header, payload string, sig []byte) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(sig)
}

// jwksServer serves a JWKS document over TLS and counts requests.
type jwksServer struct {
	*httptest.Server
	doc    atomic.Pointer[[]byte]
	status atomic.Int32 // 0 means 200
	hang   atomic.Bool
	hits   atomic.Int64
	delay  time.Duration
	stop   chan struct{}
}

func newJWKSServer(t testing.TB, doc []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{stop: make(chan struct{})}
	s.doc.Store(&doc)
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if s.hang.Load() {
			select {
			case <-s.stop:
			case <-r.Context().Done():
			}
			return
		}
		if s.delay > 0 {
			time.Sleep(s.delay)
		}
		if st := s.status.Load(); st != 0 {
			http.Error(w, "down", int(st))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(*s.doc.Load())
	}))
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(s.stop) }) // runs first: releases hanging handlers
	return s
}

func (s *jwksServer) set(doc []byte) { s.doc.Store(&doc) }

// remote builds a Remote for s with the clock c (nil: real time).
func (s *jwksServer) remote(t testing.TB, c *fakeClock, cfg RemoteConfig) *Remote {
	t.Helper()
	cfg.URI = s.URL + "/jwks.json"
	cfg.Client = s.Client()
	if c != nil {
		cfg.Now = c.Now
	}
	r, err := NewRemote(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func newVerifier(t testing.TB, c *fakeClock, ps ...Provider) *Verifier {
	t.Helper()
	opts := Options{}
	if c != nil {
		opts.Now = c.Now
	}
	v, err := NewWithOptions(opts, ps...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantReason fails unless err carries reason r.
func wantReason(t testing.TB, err error, r Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", r)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %T %v, want *Error %s", err, err, r)
	}
	if e.Reason != r {
		t.Fatalf("got %v, want reason %s", err, r)
	}
}

func mustVerify(t testing.TB, v *Verifier, tok string) *Token {
	t.Helper()
	got, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return got
}
