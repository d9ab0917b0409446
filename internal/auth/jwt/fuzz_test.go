package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Fuzz keys are derived from fixed seeds, so every fuzzing worker process holds the same keys
// (a token one worker finds valid is valid in all) without key files in the repository.
var (
	fuzzRSA = sync.OnceValue(func() *rsa.PrivateKey { return seededRSA(1) })
	fuzzEC  = sync.OnceValue(func() *ecdsa.PrivateKey {
		scalar := sha256.Sum256([]byte("jwt fuzz P-256"))
		return must(ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar[:]))
	})
	fuzzEd = sync.OnceValue(func() ed25519.PrivateKey {
		seed := sha256.Sum256([]byte("jwt fuzz Ed25519"))
		return ed25519.NewKeyFromSeed(seed[:])
	})
)

// seededRSA derives a 2048-bit RSA key from seed: two 1024-bit primes from a seeded ChaCha8.
func seededRSA(seed uint64) *rsa.PrivateKey {
	var s [32]byte
	s[0] = byte(seed)
	rng := rand.NewChaCha8(s)
	prime := func() *big.Int {
		b := make([]byte, 128)
		for {
			rng.Read(b)
			b[0] |= 0xc0 // two top bits: the product has exactly 2048 bits
			b[len(b)-1] |= 1
			if p := new(big.Int).SetBytes(b); p.ProbablyPrime(20) {
				return p
			}
		}
	}
	one, e := big.NewInt(1), big.NewInt(65537)
	for {
		p, q := prime(), prime()
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		d := new(big.Int).ModInverse(e, phi)
		if d == nil || p.Cmp(q) == 0 {
			continue
		}
		k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 65537}, D: d, Primes: []*big.Int{p, q}}
		k.Precompute()
		if k.Validate() == nil {
			return k
		}
	}
}

// fuzzSetup is the verifier FuzzVerify drives and the tokens signed for it.
type fuzzSetup struct {
	v *Verifier
	// signed holds the signing input (header.payload) of every token signed in the test; the
	// only tokens Verify may accept are signatures over one of them.
	signed map[string]bool
	valid  []string // tokens that must verify
	seeds  []string // other seeds: signed but refused, or forged
}

func newFuzzSetup(tb testing.TB) *fuzzSetup {
	fs := &fuzzSetup{signed: map[string]bool{}}
	signers := []signer{
		{alg: jose.RS256, key: fuzzRSA(), kid: "r"},
		{alg: jose.PS256, key: fuzzRSA(), kid: "r"},
		{alg: jose.ES256, key: fuzzEC(), kid: "e"},
		{alg: jose.EdDSA, key: fuzzEd(), kid: "d"},
		{alg: jose.HS256, key: hmacSecret, kid: "h"},
		{alg: jose.RS256, key: fuzzRSA()}, // no kid
	}
	ks := localKeys(tb, signers[0], signers[2], signers[3], signers[4])
	algs := append(DefaultAlgorithms(), "HS256")
	fs.v = newVerifierOpts(tb, Options{Now: func() time.Time { return t0 }},
		Provider{Name: "a", Issuer: issA, Audiences: []string{aud}, Algorithms: algs, Keys: ks},
		Provider{Name: "b", Issuer: issB, Algorithms: algs, Keys: ks},
	)
	sign := func(s signer, cl map[string]any) string {
		tok := s.sign(tb, cl)
		fs.signed[tok[:strings.LastIndexByte(tok, '.')]] = true
		return tok
	}
	for _, s := range signers {
		fs.valid = append(fs.valid, sign(s, claims(issA)), sign(s, with(claims(issB), "aud", nil, "org", map[string]any{"id": 7})))
		fs.seeds = append(fs.seeds,
			sign(s, with(claims(issA), "exp", t0.Add(-time.Hour).Unix())),
			sign(s, with(claims(issA), "aud", "other")),
			sign(s, with(claims(issA), "nbf", t0.Add(time.Hour).Unix())),
			sign(s, with(claims(issA), "iss", "https://unknown/")),
		)
	}
	payload := string(must(json.Marshal(claims(issA))))
	der := must(x509.MarshalPKIXPublicKey(&fuzzRSA().PublicKey))
	fs.seeds = append(fs.seeds,
		rawToken(`{"alg":"none"}`, payload, nil),
		hmacToken(sha256.New, `{"alg":"HS256","kid":"r"}`, payload, der), // algorithm confusion
		hmacToken(sha256.New, `{"alg":"HS256","kid":"h","crit":["b64"],"b64":false}`, payload, hmacSecret),
		"", ".", "..", "a.b.c", "a.b.c.d.e", `{"payload":"x"}`,
	)
	return fs
}

func FuzzVerify(f *testing.F) {
	fs := newFuzzSetup(f)
	for _, tok := range fs.valid {
		if _, err := fs.v.Verify(context.Background(), tok); err != nil {
			f.Fatalf("a token signed in the test fails: %v", err)
		}
		f.Add(tok)
	}
	for _, tok := range fs.seeds {
		f.Add(tok)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		got, err := fs.v.Verify(context.Background(), tok)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason == ReasonInvalidConfig || e.Reason == reasonUnknown {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		i := strings.LastIndexByte(tok, '.')
		if i < 0 || !fs.signed[tok[:i]] {
			t.Fatalf("accepted a token whose header and payload were never signed: %q", tok)
		}
		if got.Provider == "" || got.Claims == nil || got.Issuer == "" {
			t.Fatalf("accepted token %+v", got)
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	f.Add(jwks(f, signer{key: fuzzRSA(), kid: "r"}, signer{key: fuzzEC(), kid: "e"}, signer{key: fuzzEd(), kid: "d"}, signer{key: hmacSecret, kid: "h"}))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","alg":"RS256"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","alg":"HS512"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","use":"sig"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","use":"enc"},{"kty":"AKP"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := ParseJWKS(data)
		if err != nil {
			if ReasonOf(err) != ReasonInvalidConfig {
				t.Fatalf("error %v", err)
			}
			return
		}
		if ks.Len() < 1 || ks.Len() > MaxKeys {
			t.Fatalf("%d keys", ks.Len())
		}
		for _, k := range ks.keys {
			switch pk := k.pub.(type) {
			case *rsa.PublicKey:
				if pk.N.BitLen() < minRSABits {
					t.Fatalf("RSA key of %d bits", pk.N.BitLen())
				}
			case *ecdsa.PublicKey, ed25519.PublicKey:
			case []byte:
				if len(pk) < minHMACBytes {
					t.Fatalf("oct key of %d bytes", len(pk))
				}
			default:
				t.Fatalf("key of type %T", k.pub)
			}
			if k.alg != "" && !keyFitsAlg(k.pub, k.alg) {
				t.Fatalf("key with alg %q of type %T", k.alg, k.pub)
			}
		}
	})
}

func FuzzSplitClaimPath(f *testing.F) {
	for _, s := range []string{"sub", "org.id", `https://example\.com/org`, `a\\.b`, `a\`, `\.`, "", "..", `x\\\.y`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		segs := SplitClaimPath(s)
		if len(segs) == 0 {
			t.Fatal("no segments")
		}
		// The segments are what the path names: joining and splitting again changes nothing.
		if again := SplitClaimPath(JoinClaimPath(segs)); !slices.Equal(again, segs) {
			t.Fatalf("Split(Join(%q)) = %q", segs, again)
		}
		if !strings.Contains(s, `\`) && !slices.Equal(segs, strings.Split(s, ".")) {
			t.Fatalf("no escapes, yet %q != strings.Split", segs)
		}
		// Any list of names survives Join then Split (NUL stands for the separator here).
		names := strings.Split(s, "\x00")
		if again := SplitClaimPath(JoinClaimPath(names)); !slices.Equal(again, names) {
			t.Fatalf("Split(Join(%q)) = %q", names, again)
		}
	})
}
