package jwt

import (
	"context"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	issA = "https://a.example.com/"
	issB = "https://b.example.eu.auth0.com/"
	aud  = "https://api.example.com"
)

func rs256(i int, kid string) signer { return signer{alg: jose.RS256, key: rsaKey(i), kid: kid} }
func es256(kid string) signer        { return signer{alg: jose.ES256, key: ecKey(elliptic.P256()), kid: kid} }

// localVerifier has provider "a" (RSA key "ra") and "b" (EC key "eb"), both requiring aud.
func localVerifier(t testing.TB, c *fakeClock) *Verifier {
	return newVerifier(t, c,
		Provider{Name: "a", Issuer: issA, Audiences: []string{aud}, Keys: localKeys(t, rs256(0, "ra"))},
		Provider{Name: "b", Issuer: issB, Audiences: []string{"other", aud}, Keys: localKeys(t, es256("eb"))},
	)
}

func TestVerifyTwoIssuers(t *testing.T) {
	c := newClock()
	v := localVerifier(t, c)
	ta := mustVerify(t, v, rs256(0, "ra").sign(t, claims(issA)))
	if ta.Provider != "a" || ta.Issuer != issA || ta.Subject != "user-1" || ta.Algorithm != "RS256" || ta.KeyID != "ra" {
		t.Errorf("token a = %+v", ta)
	}
	if !ta.Expiry.Equal(t0.Add(time.Hour)) || !ta.IssuedAt.Equal(t0) || !ta.NotBefore.Equal(t0) {
		t.Errorf("times = %v %v %v", ta.Expiry, ta.IssuedAt, ta.NotBefore)
	}
	if len(ta.Audience) != 1 || ta.Audience[0] != aud {
		t.Errorf("aud = %v", ta.Audience)
	}
	if _, ok := ta.Claims["exp"].(json.Number); !ok {
		t.Errorf("exp claim is %T, want json.Number", ta.Claims["exp"])
	}
	tb := mustVerify(t, v, es256("eb").sign(t, with(claims(issB), "aud", []string{"x", aud})))
	if tb.Provider != "b" || tb.Algorithm != "ES256" {
		t.Errorf("token b = %+v", tb)
	}
	// a's RSA key signing for b's issuer (with b's kid, or none) fails: b's set has no RSA key.
	_, err := v.Verify(context.Background(), signer{alg: jose.RS256, key: rsaKey(0), kid: "eb"}.sign(t, claims(issB)))
	wantReason(t, err, ReasonBadSignature)
	_, err = v.Verify(context.Background(), signer{alg: jose.RS256, key: rsaKey(0)}.sign(t, claims(issB)))
	wantReason(t, err, ReasonBadSignature)
}

func TestVerifyKeysArePerProvider(t *testing.T) {
	v := newVerifier(t, newClock(),
		Provider{Name: "a", Issuer: issA, Keys: localKeys(t, rs256(0, "k"))},
		Provider{Name: "b", Issuer: issB, Keys: localKeys(t, rs256(1, "k"))},
	)
	mustVerify(t, v, rs256(0, "k").sign(t, claims(issA)))
	mustVerify(t, v, rs256(1, "k").sign(t, claims(issB)))
	_, err := v.Verify(context.Background(), rs256(0, "k").sign(t, claims(issB)))
	wantReason(t, err, ReasonBadSignature)
}

func TestVerifyUnknownIssuer(t *testing.T) {
	v := localVerifier(t, newClock())
	for name, cl := range map[string]map[string]any{
		"unknown":        with(claims(issA), "iss", "https://evil.example.com/"),
		"trailing slash": with(claims(issA), "iss", strings.TrimSuffix(issA, "/")),
		"no iss":         with(claims(issA), "iss", nil),
		"iss not string": with(claims(issA), "iss", 42),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), rs256(0, "ra").sign(t, cl))
			wantReason(t, err, ReasonUnknownIssuer)
		})
	}
}

func TestVerifyExpiry(t *testing.T) {
	c := newClock()
	v := newVerifier(t, c, Provider{Name: "a", Issuer: issA, Keys: localKeys(t, rs256(0, "ra"))}) // default skew 60 s
	s := rs256(0, "ra")
	mustVerify(t, v, s.sign(t, with(claims(issA), "exp", t0.Add(-30*time.Second).Unix())))
	mustVerify(t, v, s.sign(t, with(claims(issA), "exp", t0.Add(-59*time.Second).Unix())))
	_, err := v.Verify(context.Background(), s.sign(t, with(claims(issA), "exp", t0.Add(-60*time.Second).Unix())))
	wantReason(t, err, ReasonExpired)
	_, err = v.Verify(context.Background(), s.sign(t, with(claims(issA), "exp", t0.Add(-time.Hour).Unix())))
	wantReason(t, err, ReasonExpired)
	// Fractional NumericDate.
	mustVerify(t, v, s.sign(t, with(claims(issA), "exp", float64(t0.Unix())+0.5)))
	// No exp: accepted (RFC 7519 makes it optional).
	tok := mustVerify(t, v, s.sign(t, with(claims(issA), "exp", nil)))
	if !tok.Expiry.IsZero() {
		t.Errorf("Expiry = %v, want zero", tok.Expiry)
	}
	// Huge exp saturates instead of overflowing.
	mustVerify(t, v, s.sign(t, with(claims(issA), "exp", 1e300)))
	// Negative skew means none.
	v0 := newVerifier(t, c, Provider{Name: "a", Issuer: issA, ClockSkew: -1, Keys: localKeys(t, s)})
	_, err = v0.Verify(context.Background(), s.sign(t, with(claims(issA), "exp", t0.Unix())))
	wantReason(t, err, ReasonExpired)
	mustVerify(t, v0, s.sign(t, with(claims(issA), "exp", t0.Unix()+1)))
}

func TestVerifyNotBeforeAndIssuedAt(t *testing.T) {
	c := newClock()
	v := newVerifier(t, c, Provider{Name: "a", Issuer: issA, ClockSkew: 30 * time.Second, Keys: localKeys(t, rs256(0, "ra"))})
	s := rs256(0, "ra")
	mustVerify(t, v, s.sign(t, with(claims(issA), "nbf", t0.Add(30*time.Second).Unix())))
	_, err := v.Verify(context.Background(), s.sign(t, with(claims(issA), "nbf", t0.Add(31*time.Second).Unix())))
	wantReason(t, err, ReasonNotYetValid)
	mustVerify(t, v, s.sign(t, with(claims(issA), "iat", t0.Add(30*time.Second).Unix())))
	_, err = v.Verify(context.Background(), s.sign(t, with(claims(issA), "iat", t0.Add(10*time.Minute).Unix())))
	wantReason(t, err, ReasonIssuedInFuture)
	_, err = v.Verify(context.Background(), s.sign(t, with(claims(issA), "nbf", "soon")))
	wantReason(t, err, ReasonMalformed)
}

func TestVerifyAudience(t *testing.T) {
	v := localVerifier(t, newClock())
	s := rs256(0, "ra")
	mustVerify(t, v, s.sign(t, with(claims(issA), "aud", []string{"x", aud})))
	for name, a := range map[string]any{
		"wrong":        "https://other.example.com",
		"wrong array":  []string{"x", "y"},
		"missing":      nil,
		"empty array":  []string{},
		"prefix only":  aud + "/v2",
		"case differs": strings.ToUpper(aud),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), s.sign(t, with(claims(issA), "aud", a)))
			wantReason(t, err, ReasonBadAudience)
		})
	}
	_, err := v.Verify(context.Background(), s.sign(t, with(claims(issA), "aud", 7)))
	wantReason(t, err, ReasonMalformed)
	// A provider without audiences does not check them.
	v2 := newVerifier(t, newClock(), Provider{Name: "a", Issuer: issA, Keys: localKeys(t, s)})
	mustVerify(t, v2, s.sign(t, with(claims(issA), "aud", "anything")))
	mustVerify(t, v2, s.sign(t, with(claims(issA), "aud", nil)))
}

func TestVerifyAlgNone(t *testing.T) {
	v := localVerifier(t, newClock())
	payload, _ := json.Marshal(claims(issA))
	for _, hdr := range []string{`{"alg":"none"}`, `{"alg":"none","kid":"ra"}`, `{"alg":"None"}`, `{"alg":"NONE","typ":"JWT"}`} {
		_, err := v.Verify(context.Background(), rawToken(hdr, string(payload), nil))
		wantReason(t, err, ReasonAlgNotAllowed)
	}
	if _, err := New(Provider{Name: "a", Issuer: issA, Algorithms: []string{"none"}, Keys: localKeys(t, rs256(0, "ra"))}); err == nil {
		t.Error(`New accepted algorithm "none"`)
	}
}

func TestVerifyAlgNotAllowed(t *testing.T) {
	ks := localKeys(t, rs256(0, "ra"), es256("eb"))
	v := newVerifier(t, newClock(), Provider{Name: "a", Issuer: issA, Algorithms: []string{"RS256"}, Keys: ks})
	mustVerify(t, v, rs256(0, "ra").sign(t, claims(issA)))
	_, err := v.Verify(context.Background(), es256("eb").sign(t, claims(issA)))
	wantReason(t, err, ReasonAlgNotAllowed)
	_, err = v.Verify(context.Background(), signer{alg: jose.PS256, key: rsaKey(0), kid: "ra"}.sign(t, claims(issA)))
	wantReason(t, err, ReasonAlgNotAllowed)
}

// TestVerifyHS256PublicKeyConfusion is the classic algorithm-confusion attack: HS256 with the
// provider's RSA public key as the HMAC secret.
func TestVerifyHS256PublicKeyConfusion(t *testing.T) {
	pub := &rsaKey(0).PublicKey
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(pub)
	n := pub.N.Bytes()
	for _, secret := range [][]byte{der, pkcs1, n} {
		forged := signer{alg: jose.HS256, key: secret, kid: "ra"}.sign(t, claims(issA))
		// Default algorithms: HS256 is not among them.
		v := localVerifier(t, newClock())
		_, err := v.Verify(context.Background(), forged)
		wantReason(t, err, ReasonAlgNotAllowed)
		// Even with HS256 allowed (a local set with an oct key too), the RSA key is never an
		// HMAC secret.
		ks := localKeys(t, rs256(0, "ra"), signer{alg: jose.HS256, key: hmacSecret, kid: "h"})
		v2 := newVerifier(t, newClock(), Provider{Name: "a", Issuer: issA, Algorithms: []string{"RS256", "HS256"}, Keys: ks})
		_, err = v2.Verify(context.Background(), forged)
		wantReason(t, err, ReasonBadSignature)
		noKid := signer{alg: jose.HS256, key: secret}.sign(t, claims(issA))
		_, err = v2.Verify(context.Background(), noKid)
		wantReason(t, err, ReasonBadSignature)
	}
}

func TestVerifyHS256LocalOct(t *testing.T) {
	hs := signer{alg: jose.HS256, key: hmacSecret, kid: "h"}
	ks := localKeys(t, hs)
	tok := hs.sign(t, claims(issA))
	// Not configured: refused.
	v := newVerifier(t, newClock(), Provider{Name: "a", Issuer: issA, Keys: ks})
	_, err := v.Verify(context.Background(), tok)
	wantReason(t, err, ReasonAlgNotAllowed)
	// Configured: accepted; HS512 with a 64-byte key too.
	v = newVerifier(t, newClock(), Provider{Name: "a", Issuer: issA, Algorithms: []string{"HS256", "HS512"}, Keys: ks})
	mustVerify(t, v, tok)
	mustVerify(t, v, signer{alg: jose.HS512, key: hmacSecret, kid: "h"}.sign(t, claims(issA)))
	// A different secret fails.
	_, err = v.Verify(context.Background(), signer{alg: jose.HS256, key: []byte(strings.Repeat("x", 32)), kid: "h"}.sign(t, claims(issA)))
	wantReason(t, err, ReasonBadSignature)
	// A 32-byte secret cannot do HS512.
	short := signer{alg: jose.HS256, key: hmacSecret[:32], kid: "s"}
	v = newVerifier(t, newClock(), Provider{Name: "a", Issuer: issA, Algorithms: []string{"HS256", "HS512"}, Keys: localKeys(t, short)})
	mustVerify(t, v, short.sign(t, claims(issA)))
	payload := string(must(json.Marshal(claims(issA))))
	_, err = v.Verify(context.Background(), hmacToken(sha512.New, `{"alg":"HS512","kid":"s"}`, payload, hmacSecret[:32]))
	wantReason(t, err, ReasonBadSignature)
}

func TestVerifyAlgorithms(t *testing.T) {
	if got, want := strings.Join(DefaultAlgorithms(), ","), "RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,ES512,EdDSA"; got != want {
		t.Errorf("DefaultAlgorithms = %s", got)
	}
	for _, s := range []signer{
		{alg: jose.RS256, key: rsaKey(0), kid: "k"},
		{alg: jose.RS384, key: rsaKey(0), kid: "k"},
		{alg: jose.RS512, key: rsaKey(0), kid: "k"},
		{alg: jose.PS256, key: rsaKey(0), kid: "k"},
		{alg: jose.PS384, key: rsaKey(0), kid: "k"},
		{alg: jose.PS512, key: rsaKey(0), kid: "k"},
		{alg: jose.ES256, key: ecKey(elliptic.P256()), kid: "k"},
		{alg: jose.ES384, key: ecKey(elliptic.P384()), kid: "k"},
		{alg: jose.ES512, key: ecKey(elliptic.P521()), kid: "k"},
		{alg: jose.EdDSA, key: edKey(), kid: "k"},
	} {
		t.Run(string(s.alg), func(t *testing.T) {
			v := newVerifier(t, newClock(), Provider{Name: "a", Issuer: issA, Keys: localKeys(t, s)})
			tok := mustVerify(t, v, s.sign(t, claims(issA)))
			if tok.Algorithm != string(s.alg) {
				t.Errorf("Algorithm = %s", tok.Algorithm)
			}
		})
	}
	// An ES384 token cannot be verified by a P-256 key with the same kid.
	v := newVerifier(t, newClock(), Provider{Name: "a", Issuer: issA, Keys: localKeys(t, es256("k"))})
	_, err := v.Verify(context.Background(), signer{alg: jose.ES384, key: ecKey(elliptic.P384()), kid: "k"}.sign(t, claims(issA)))
	wantReason(t, err, ReasonBadSignature)
}

func TestVerifyKeySelection(t *testing.T) {
	ks := localKeys(t, rs256(0, "r0"), rs256(1, "r1"), es256("e"))
	v := newVerifier(t, newClock(), Provider{Name: "a", Issuer: issA, Keys: ks})
	// No kid: every key of the type is tried.
	mustVerify(t, v, signer{alg: jose.RS256, key: rsaKey(1)}.sign(t, claims(issA)))
	mustVerify(t, v, signer{alg: jose.ES256, key: ecKey(elliptic.P256())}.sign(t, claims(issA)))
	_, err := v.Verify(context.Background(), signer{alg: jose.RS256, key: rsaKey(2)}.sign(t, claims(issA)))
	wantReason(t, err, ReasonBadSignature)
	// A kid selects its key only.
	_, err = v.Verify(context.Background(), signer{alg: jose.RS256, key: rsaKey(1), kid: "r0"}.sign(t, claims(issA)))
	wantReason(t, err, ReasonBadSignature)
	// An unknown kid in a local set.
	_, err = v.Verify(context.Background(), signer{alg: jose.RS256, key: rsaKey(1), kid: "nope"}.sign(t, claims(issA)))
	wantReason(t, err, ReasonUnknownKID)
	// A key whose JWK "alg" is RS256 is not used for PS256.
	doc := `{"keys":[` + string(must(json.Marshal(jose.JSONWebKey{Key: &rsaKey(0).PublicKey, KeyID: "r", Algorithm: "RS256"}))) + `]}`
	ks2, err := ParseJWKS([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	v2 := newVerifier(t, newClock(), Provider{Name: "a", Issuer: issA, Keys: ks2})
	mustVerify(t, v2, signer{alg: jose.RS256, key: rsaKey(0), kid: "r"}.sign(t, claims(issA)))
	_, err = v2.Verify(context.Background(), signer{alg: jose.PS256, key: rsaKey(0), kid: "r"}.sign(t, claims(issA)))
	wantReason(t, err, ReasonBadSignature)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestVerifyMalformed(t *testing.T) {
	v := localVerifier(t, newClock())
	s := rs256(0, "ra")
	good := s.sign(t, claims(issA))
	parts := strings.Split(good, ".")
	sig := must(jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: rsaKey(0)}, nil))
	signRaw := func(payload string) string {
		obj := must(sig.Sign([]byte(payload)))
		return must(obj.CompactSerialize())
	}
	enc := must(jose.NewEncrypter(jose.A128GCM, jose.Recipient{Algorithm: jose.RSA_OAEP, Key: &rsaKey(0).PublicKey}, nil))
	jwe := must(must(enc.Encrypt([]byte(`{"iss":"` + issA + `"}`))).CompactSerialize())
	// Flip the last signature character to one with non-zero unused bits.
	lastSig := parts[2]
	noncanon := parts[0] + "." + parts[1] + "." + lastSig[:len(lastSig)-1] + string(lastSig[len(lastSig)-1]^1)
	for name, tok := range map[string]string{
		"empty":              "",
		"one segment":        "abc",
		"two segments":       parts[0] + "." + parts[1],
		"four segments":      good + ".x",
		"JWE":                jwe,
		"JSON serialization": must(sig.Sign([]byte(`{"iss":"` + issA + `"}`))).FullSerialize(),
		"whitespace":         parts[0] + ". " + parts[1] + "." + parts[2],
		"padding":            parts[0] + "=." + parts[1] + "." + parts[2],
		"std base64":         parts[0] + "." + parts[1] + ".+/" + parts[2][2:],
		"non-canonical":      noncanon,
		"payload not object": signRaw(`"hello"`),
		"payload array":      signRaw(`[1,2]`),
		"payload null":       signRaw(`null`),
		"payload trailing":   signRaw(`{"iss":"` + issA + `"} {}`),
		"payload not json":   signRaw(`{"iss":`),
		"exp string":         s.sign(t, with(claims(issA), "exp", "tomorrow")),
		"too large":          s.sign(t, with(claims(issA), "pad", strings.Repeat("x", MaxTokenSize))),
		"bad header":         base64.RawURLEncoding.EncodeToString([]byte(`{"alg":`)) + "." + parts[1] + "." + parts[2],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tok)
			wantReason(t, err, ReasonMalformed)
		})
	}
	// A crit header is refused even when signed (JWTs do not use it).
	hdr := `{"alg":"HS256","kid":"h","crit":["exp"],"exp":1}`
	payload := string(must(json.Marshal(claims(issA))))
	ks := localKeys(t, signer{alg: jose.HS256, key: hmacSecret, kid: "h"})
	vh := newVerifier(t, newClock(), Provider{Name: "a", Issuer: issA, Algorithms: []string{"HS256"}, Keys: ks})
	_, err := vh.Verify(context.Background(), hmacToken(sha256.New, hdr, payload, hmacSecret))
	wantReason(t, err, ReasonMalformed)
	mustVerify(t, vh, hmacToken(sha256.New, `{"alg":"HS256","kid":"h"}`, payload, hmacSecret))
}

func TestVerifyTokenSizeCap(t *testing.T) {
	v := localVerifier(t, newClock())
	huge := strings.Repeat("a", 10<<20)
	allocs := testing.AllocsPerRun(10, func() {
		v.Verify(context.Background(), huge)
	})
	if allocs > 5 {
		t.Errorf("a 10 MiB token cost %.0f allocations", allocs)
	}
	_, err := v.Verify(context.Background(), huge)
	wantReason(t, err, ReasonMalformed)
}

func TestNewRejects(t *testing.T) {
	ks := localKeys(t, rs256(0, "ra"))
	r, err := NewRemote(RemoteConfig{URI: "https://idp.example.com/jwks"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for name, ps := range map[string][]Provider{
		"none":            nil,
		"no name":         {{Issuer: issA, Keys: ks}},
		"no issuer":       {{Name: "a", Keys: ks}},
		"no keys":         {{Name: "a", Issuer: issA}},
		"dup name":        {{Name: "a", Issuer: issA, Keys: ks}, {Name: "a", Issuer: issB, Keys: ks}},
		"dup issuer":      {{Name: "a", Issuer: issA, Keys: ks}, {Name: "b", Issuer: issA, Keys: ks}},
		"alg none":        {{Name: "a", Issuer: issA, Algorithms: []string{"RS256", "none"}, Keys: ks}},
		"alg unknown":     {{Name: "a", Issuer: issA, Algorithms: []string{"RS1"}, Keys: ks}},
		"HS with remote":  {{Name: "a", Issuer: issA, Algorithms: []string{"HS256"}, Keys: r}},
		"skew over limit": {{Name: "a", Issuer: issA, ClockSkew: time.Hour, Keys: ks}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(ps...)
			wantReason(t, err, ReasonInvalidConfig)
		})
	}
	if _, err := New(Provider{Name: "a", Issuer: issA, Algorithms: []string{"RS256"}, Keys: r}); err != nil {
		t.Errorf("remote provider refused: %v", err)
	}
}

func TestErrorsAndChallenge(t *testing.T) {
	c := newClock()
	v := localVerifier(t, c)
	_, err := v.Verify(context.Background(), rs256(0, "ra").sign(t, with(claims(issA), "exp", t0.Add(-time.Hour).Unix())))
	if !errors.Is(err, &Error{Reason: ReasonExpired}) || errors.Is(err, &Error{Reason: ReasonBadAudience}) {
		t.Errorf("errors.Is on %v", err)
	}
	if ReasonOf(err) != ReasonExpired || ReasonOf(errors.New("x")) != "unknown" {
		t.Error("ReasonOf")
	}
	var e *Error
	errors.As(err, &e)
	if e.Provider != "a" || !strings.Contains(e.Error(), "exp is 1h0m0s ago") {
		t.Errorf("Error() = %q", e.Error())
	}
	if got, want := Challenge("api", err), `Bearer realm="api", error="invalid_token", error_description="token expired"`; got != want {
		t.Errorf("Challenge = %s, want %s", got, want)
	}
	if got := Challenge("", nil); got != "Bearer" {
		t.Errorf("Challenge(nil) = %s", got)
	}
	if got := Challenge(`a"b`+"\r\n", nil); got != `Bearer realm="a\"b"` {
		t.Errorf("Challenge quoting = %s", got)
	}
	// The description never carries token content; the detail quotes and truncates it.
	long := "https://" + strings.Repeat("e", 500) + "\n"
	_, err = v.Verify(context.Background(), rs256(0, "ra").sign(t, with(claims(issA), "iss", long)))
	if strings.Contains(err.Error(), strings.Repeat("e", 100)) || strings.Contains(err.Error(), "\n") {
		t.Errorf("detail not truncated/quoted: %q", err.Error())
	}
	if strings.Contains(Challenge("", err), "https") {
		t.Errorf("challenge leaks the issuer: %s", Challenge("", err))
	}
}

// hmacToken signs header.payload with HS256 by hand, to set header fields go-jose would not.
func hmacToken(h func() hash.Hash, header, payload string, secret []byte) string {
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	m := hmac.New(h, secret)
	m.Write([]byte(input))
	return input + "." + enc.EncodeToString(m.Sum(nil))
}

// TestVerifyIgnoresHeaderKeys: keys a token brings itself ("jwk", "jku", "x5u") are never used.
func TestVerifyIgnoresHeaderKeys(t *testing.T) {
	v := localVerifier(t, newClock())
	attacker := genEC(elliptic.P256())
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("JWT").
		WithHeader("jku", "https://evil.example.com/jwks.json").
		WithHeader("x5u", "https://evil.example.com/cert.pem")
	sg := must(jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: attacker}, opts))
	tok := must(must(sg.Sign(must(json.Marshal(claims(issB))))).CompactSerialize())
	_, err := v.Verify(context.Background(), tok)
	wantReason(t, err, ReasonBadSignature)
	// The same with the provider's kid.
	sg = must(jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: attacker}, opts.WithHeader("kid", "eb")))
	tok = must(must(sg.Sign(must(json.Marshal(claims(issB))))).CompactSerialize())
	_, err = v.Verify(context.Background(), tok)
	wantReason(t, err, ReasonBadSignature)
}

// TestVerifyDuplicateMembers: JSON with a member twice is read the same way for choosing the
// provider and for the claims (the last one), and header lookups are case-sensitive.
func TestVerifyDuplicateMembers(t *testing.T) {
	hs := signer{alg: jose.HS256, key: hmacSecret, kid: "h"}
	ks := localKeys(t, hs)
	v := newVerifier(t, newClock(),
		Provider{Name: "a", Issuer: issA, Algorithms: []string{"HS256"}, Keys: ks},
		Provider{Name: "b", Issuer: issB, Algorithms: []string{"HS256"}, Audiences: []string{"only-b"}, Keys: ks},
	)
	payload := `{"iss":"` + issB + `","aud":"x","exp":` + fmt.Sprint(t0.Add(time.Hour).Unix()) + `,"iss":"` + issA + `"}`
	tok := mustVerify(t, v, hmacToken(sha256.New, `{"alg":"HS256","kid":"h"}`, payload, hmacSecret))
	if tok.Provider != "a" || tok.Claims["iss"] != issA {
		t.Errorf("provider %s, iss %v", tok.Provider, tok.Claims["iss"])
	}
	_, err := v.Verify(context.Background(), hmacToken(sha256.New, `{"alg":"HS256","kid":"h","ALG":"none"}`, payload, hmacSecret))
	if err != nil {
		t.Errorf("an extra ALG member changed the algorithm: %v", err)
	}
}
