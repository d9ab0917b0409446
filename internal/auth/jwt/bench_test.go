package jwt

import (
	"context"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// benchClaims are a typical access token's claims (about 600 bytes signed with RS256).
func benchClaims() map[string]any {
	return with(claims(issA),
		"exp", time.Now().Add(time.Hour).Unix(), "iat", time.Now().Unix(), "nbf", time.Now().Unix(),
		"scope", "openid profile email read:orders write:orders",
		"azp", "client-0123456789", "org", map[string]any{"id": "org_42", "role": "admin"},
		"email", "user@example.com", "jti", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
}

func benchVerify(b *testing.B, s signer, opts Options) {
	v := newVerifierOpts(b, opts, Provider{Name: "a", Issuer: issA, Audiences: []string{aud}, Keys: localKeys(b, s)})
	tok := s.sign(b, benchClaims())
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCached is the hit path: the same token again.
func BenchmarkVerifyCached(b *testing.B) {
	benchVerify(b, rs256(0, "k"), Options{})
}

// BenchmarkVerifyCachedParallel is the hit path from all Ps at once, over many tokens.
func BenchmarkVerifyCachedParallel(b *testing.B) {
	s := es256("k")
	v := newVerifier(b, nil, Provider{Name: "a", Issuer: issA, Keys: localKeys(b, s)})
	toks := make([]string, 256)
	for i := range toks {
		toks[i] = s.sign(b, with(benchClaims(), "jti", i))
		if _, err := v.Verify(context.Background(), toks[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := v.Verify(context.Background(), toks[i%len(toks)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkVerifyRS256Uncached(b *testing.B) {
	benchVerify(b, rs256(0, "k"), Options{CacheSize: -1})
}

func BenchmarkVerifyES256Uncached(b *testing.B) {
	benchVerify(b, es256("k"), Options{CacheSize: -1})
}

func BenchmarkVerifyEdDSAUncached(b *testing.B) {
	benchVerify(b, signer{alg: jose.EdDSA, key: edKey(), kid: "k"}, Options{CacheSize: -1})
}
