// Package jwt verifies JSON Web Tokens for an AuthPolicy's jwt block: signed JWS compact tokens
// (RFC 7515/7519) from one or more identity providers, each named by its issuer, with keys from
// a local JWKS or a remote one (fetched, cached, refreshed, rotated).
//
// The token's "iss" is read before verification only to choose the provider; nothing else of an
// unverified token is used. Verification then requires an algorithm the provider allows ("none"
// never; HS* only with a local key set), a key of that algorithm's type (an RSA key is never
// used as an HMAC secret), a valid signature, the issuer, one of the provider's audiences, and
// exp/nbf/iat within the clock skew. Tokens over MaxTokenSize, JWE and JSON serialisations, and
// non-canonical base64 are malformed.
//
// Verified tokens are cached (keyed by the token itself) until the earlier of their expiry and
// a bounded time, and only while their provider still has the key set that verified them, so a
// token presented again costs a map lookup instead of a signature check.
//
// The package has no dependency on the API types or the proxy: the request-path filter adapts
// the policy into Providers and an Extractor and renders failures with Challenge.
package jwt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// MaxTokenSize bounds a token: longer ones are refused before any decoding.
const MaxTokenSize = 16 << 10

// DefaultClockSkew is a provider's leeway for exp, nbf and iat when it sets none.
const DefaultClockSkew = 60 * time.Second

// MaxClockSkew bounds a provider's leeway.
const MaxClockSkew = 10 * time.Minute

// Provider is one identity provider a Verifier accepts tokens from.
type Provider struct {
	// Name identifies the provider in Token and errors; unique within a Verifier.
	Name string
	// Issuer must equal the token's "iss" exactly; unique within a Verifier, it selects the
	// provider.
	Issuer string
	// Audiences, when not empty, must include one of the token's "aud" values.
	Audiences []string
	// Algorithms the provider's tokens may be signed with; empty means DefaultAlgorithms().
	// "none" is refused, and HS256/384/512 need Keys to be a local *KeySet.
	Algorithms []string
	// ClockSkew is the leeway for exp, nbf and iat: 0 means DefaultClockSkew, negative none.
	ClockSkew time.Duration
	// Keys verifies the signatures: a *KeySet from ParseJWKS, or a *Remote. The caller owns a
	// Remote (it may serve several Verifiers) and closes it when no Verifier uses it any more.
	Keys KeySource
}

// provider is a checked Provider.
type provider struct {
	name      string
	issuer    string
	audiences []string
	algs      map[string]bool
	skew      int64 // ns
	keys      KeySource
}

// Token is a verified token. It may be shared with other requests presenting the same token
// (the cache returns the same *Token), so it and its Claims must not be modified.
type Token struct {
	// Provider is the name of the provider that verified the token.
	Provider string
	// Issuer, Subject and Audience are the "iss", "sub" (when a string) and "aud" claims.
	Issuer   string
	Subject  string
	Audience []string
	// Expiry, NotBefore and IssuedAt are "exp", "nbf" and "iat"; zero when absent.
	Expiry    time.Time
	NotBefore time.Time
	IssuedAt  time.Time
	// Algorithm and KeyID are the header's "alg" and "kid".
	Algorithm string
	KeyID     string
	// Claims is the whole payload. JSON numbers are json.Number, so large integers keep their
	// digits; objects are map[string]any and arrays []any.
	Claims map[string]any
}

// Claim returns the value at path (from SplitClaimPath) in the claims, descending into
// objects; false when a step is missing or not an object.
func (t *Token) Claim(path []string) (any, bool) {
	return lookupClaim(t.Claims, path)
}

// Options tunes a Verifier.
type Options struct {
	// CacheSize bounds the verified-token cache, in tokens: 0 means DefaultCacheSize, negative
	// disables the cache.
	CacheSize int
	// CacheTTL bounds how long a verified token is reused without being verified again (it is
	// never reused past its exp plus clock skew): 0 means, and more than MaxCacheTTL is cut to,
	// MaxCacheTTL.
	CacheTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verifier verifies tokens against a fixed set of providers. It is safe for concurrent use.
type Verifier struct {
	byIssuer map[string]*provider
	cache    *tokenCache // nil when disabled
	now      func() time.Time

	sigChecks atomic.Int64 // signature verifications attempted (tests)
}

// New returns a Verifier for providers with default Options.
func New(providers ...Provider) (*Verifier, error) {
	return NewWithOptions(Options{}, providers...)
}

// NewWithOptions returns a Verifier for providers. It refuses no providers, a provider without
// name, issuer or keys, duplicate names or issuers, unknown algorithms, "none", HS* with keys
// that are not a local *KeySet, and a clock skew over MaxClockSkew.
func NewWithOptions(opts Options, providers ...Provider) (*Verifier, error) {
	if len(providers) == 0 {
		return nil, newError(ReasonInvalidConfig, "", "no providers")
	}
	v := &Verifier{byIssuer: make(map[string]*provider, len(providers)), now: opts.Now}
	if v.now == nil {
		v.now = time.Now
	}
	names := map[string]bool{}
	for i, p := range providers {
		cp, err := checkProvider(p)
		if err != nil {
			err.Detail = fmt.Sprintf("provider %d: %s", i, err.Detail)
			return nil, err
		}
		if names[p.Name] {
			return nil, newError(ReasonInvalidConfig, p.Name, "duplicate provider name")
		}
		if v.byIssuer[p.Issuer] != nil {
			return nil, newError(ReasonInvalidConfig, p.Name, "issuer %q is also provider %s's", p.Issuer, v.byIssuer[p.Issuer].name)
		}
		names[p.Name] = true
		v.byIssuer[p.Issuer] = cp
	}
	if opts.CacheSize >= 0 {
		v.cache = newTokenCache(opts.CacheSize, opts.CacheTTL)
	}
	return v, nil
}

func checkProvider(p Provider) (*provider, *Error) {
	switch {
	case p.Name == "":
		return nil, newError(ReasonInvalidConfig, "", "no name")
	case p.Issuer == "":
		return nil, newError(ReasonInvalidConfig, p.Name, "no issuer")
	case p.Keys == nil:
		return nil, newError(ReasonInvalidConfig, p.Name, "no keys")
	case p.ClockSkew > MaxClockSkew:
		return nil, newError(ReasonInvalidConfig, p.Name, "clockSkew %s is over %s", p.ClockSkew, MaxClockSkew)
	}
	cp := &provider{
		name:      p.Name,
		issuer:    p.Issuer,
		audiences: slices.Clone(p.Audiences),
		algs:      map[string]bool{},
		skew:      int64(p.ClockSkew),
		keys:      p.Keys,
	}
	switch {
	case p.ClockSkew == 0:
		cp.skew = int64(DefaultClockSkew)
	case p.ClockSkew < 0:
		cp.skew = 0
	}
	algs := p.Algorithms
	if len(algs) == 0 {
		algs = DefaultAlgorithms()
	}
	_, local := p.Keys.(*KeySet)
	for _, a := range algs {
		switch {
		case a == "none":
			return nil, newError(ReasonInvalidConfig, p.Name, `algorithm "none" is never accepted`)
		case !knownAlgorithm(a):
			return nil, newError(ReasonInvalidConfig, p.Name, "unknown algorithm %q", a)
		case isHMAC(a) && !local:
			return nil, newError(ReasonInvalidConfig, p.Name, "%s needs a local key set (a shared secret cannot come from a public JWKS)", a)
		}
		cp.algs[a] = true
	}
	return cp, nil
}

// Verify checks token and returns its claims. Errors are *Error. ctx bounds a key fetch the
// token may need (first use of a remote set, or an unknown kid).
func (v *Verifier) Verify(ctx context.Context, token string) (*Token, error) {
	if len(token) > MaxTokenSize {
		return nil, newError(ReasonMalformed, "", "token is %d bytes, over the %d-byte limit", len(token), MaxTokenSize)
	}
	now := v.now()
	if v.cache != nil {
		if t := v.cache.get(token, now); t != nil {
			return t, nil
		}
	}
	t, p, set, until, err := v.verify(ctx, token, now)
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.put(token, t, p, set, now, until)
	}
	return t, nil
}

// verify is Verify without the cache. until is the unix ns up to which t is valid (exp plus
// skew; MaxInt64 without exp).
func (v *Verifier) verify(ctx context.Context, token string, now time.Time) (*Token, *provider, *KeySet, int64, error) {
	if err := checkCompact(token); err != nil {
		return nil, nil, nil, 0, err
	}
	jws, err := jose.ParseSignedCompact(token, allJoseAlgs)
	if err != nil {
		var ua *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &ua) {
			return nil, nil, nil, 0, newError(ReasonAlgNotAllowed, "", "alg %s", untrusted(string(ua.Got)))
		}
		return nil, nil, nil, 0, &Error{Reason: ReasonMalformed, Detail: "not a JWS", Err: clip(err)}
	}
	if len(jws.Signatures) != 1 {
		return nil, nil, nil, 0, newError(ReasonMalformed, "", "%d signatures", len(jws.Signatures))
	}
	hdr := jws.Signatures[0].Header
	for _, h := range []jose.HeaderKey{"crit", "b64"} {
		if _, ok := hdr.ExtraHeaders[h]; ok {
			return nil, nil, nil, 0, newError(ReasonMalformed, "", "header %q is not supported in a JWT", h)
		}
	}

	// The payload is decoded before the signature is checked only to read "iss" and choose the
	// provider; the claims are used after the signature over these very bytes verified.
	payload := jws.UnsafePayloadWithoutVerification()
	claims, err := decodeClaims(payload)
	if err != nil {
		return nil, nil, nil, 0, &Error{Reason: ReasonMalformed, Detail: "payload is not a JSON object", Err: clip(err)}
	}
	iss, ok := claims["iss"].(string)
	if !ok {
		return nil, nil, nil, 0, newError(ReasonUnknownIssuer, "", "no \"iss\" string")
	}
	p := v.byIssuer[iss]
	if p == nil {
		return nil, nil, nil, 0, newError(ReasonUnknownIssuer, "", "iss %s", untrusted(iss))
	}
	alg, kid := hdr.Algorithm, hdr.KeyID
	if !p.algs[alg] {
		return nil, nil, nil, 0, newError(ReasonAlgNotAllowed, p.name, "alg %s", alg)
	}

	set, err := p.keys.Keys(ctx, kid)
	if err != nil {
		return nil, nil, nil, 0, withProvider(err, p.name)
	}
	if err := v.checkSignature(jws, set, alg, kid, payload, p.name); err != nil {
		return nil, nil, nil, 0, err
	}

	t, until, err := p.checkClaims(claims, now)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	t.Algorithm, t.KeyID = alg, kid
	return t, p, set, until, nil
}

// checkSignature verifies jws with a key of set that fits alg (and kid, when the token has
// one), requiring the verified payload to be the one the claims were decoded from.
func (v *Verifier) checkSignature(jws *jose.JSONWebSignature, set *KeySet, alg, kid string, payload []byte, pname string) error {
	sawKID, tried := false, 0
	for i := range set.keys {
		k := &set.keys[i]
		if kid != "" {
			if k.kid != kid {
				continue
			}
			sawKID = true
		}
		if (k.alg != "" && k.alg != alg) || !keyFitsAlg(k.pub, alg) {
			continue
		}
		tried++
		v.sigChecks.Add(1)
		out, err := jws.Verify(k.pub)
		if err == nil && bytes.Equal(out, payload) {
			return nil
		}
	}
	switch {
	case kid != "" && !sawKID:
		return newError(ReasonUnknownKID, pname, "kid %s not in the key set", untrusted(kid))
	case tried == 0:
		return newError(ReasonBadSignature, pname, "no %s key%s", alg, kidNote(kid))
	default:
		return newError(ReasonBadSignature, pname, "%s signature does not verify%s", alg, kidNote(kid))
	}
}

func kidNote(kid string) string {
	if kid == "" {
		return " (no kid)"
	}
	return " with kid " + untrusted(kid)
}

// withProvider returns err naming the provider.
func withProvider(err error, name string) error {
	var e *Error
	if errors.As(err, &e) {
		c := *e
		c.Provider = name
		return &c
	}
	return &Error{Reason: ReasonJWKSUnavailable, Provider: name, Err: err}
}

// checkClaims validates the registered claims and builds the Token; until is exp plus skew in
// unix ns (MaxInt64 without exp).
func (p *provider) checkClaims(claims map[string]any, now time.Time) (*Token, int64, error) {
	t := &Token{Provider: p.name, Claims: claims}
	if iss, _ := claims["iss"].(string); iss != p.issuer {
		return nil, 0, newError(ReasonUnknownIssuer, p.name, "iss does not match") // cannot happen: iss chose p
	}
	t.Issuer = p.issuer
	t.Subject, _ = claims["sub"].(string)

	n := now.UnixNano()
	exp, hasExp, err := numericDate(claims, "exp")
	if err != nil {
		return nil, 0, &Error{Reason: ReasonMalformed, Provider: p.name, Err: err}
	}
	nbf, hasNbf, err := numericDate(claims, "nbf")
	if err != nil {
		return nil, 0, &Error{Reason: ReasonMalformed, Provider: p.name, Err: err}
	}
	iat, hasIat, err := numericDate(claims, "iat")
	if err != nil {
		return nil, 0, &Error{Reason: ReasonMalformed, Provider: p.name, Err: err}
	}
	until := int64(math.MaxInt64)
	if hasExp {
		until = satAdd(exp, p.skew)
		if n >= until {
			return nil, 0, newError(ReasonExpired, p.name, "exp is %s ago (leeway %s)", since(n, exp), time.Duration(p.skew))
		}
		t.Expiry = time.Unix(0, exp)
	}
	if hasNbf {
		if satAdd(n, p.skew) < nbf {
			return nil, 0, newError(ReasonNotYetValid, p.name, "nbf is %s ahead (leeway %s)", since(nbf, n), time.Duration(p.skew))
		}
		t.NotBefore = time.Unix(0, nbf)
	}
	if hasIat {
		if satAdd(n, p.skew) < iat {
			return nil, 0, newError(ReasonIssuedInFuture, p.name, "iat is %s ahead (leeway %s)", since(iat, n), time.Duration(p.skew))
		}
		t.IssuedAt = time.Unix(0, iat)
	}

	aud, err := audience(claims["aud"])
	if err != nil {
		return nil, 0, &Error{Reason: ReasonMalformed, Provider: p.name, Err: err}
	}
	t.Audience = aud
	if len(p.audiences) > 0 && !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(p.audiences, a) }) {
		return nil, 0, newError(ReasonBadAudience, p.name, "aud has none of the provider's %d audiences", len(p.audiences))
	}
	return t, until, nil
}

// decodeClaims decodes a JSON object, numbers as json.Number, refusing trailing data.
func decodeClaims(payload []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("null")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return m, nil
}

// numericDate reads a NumericDate claim (RFC 7519 §2: seconds since the epoch, possibly
// fractional) as unix ns, saturating far past and future values.
func numericDate(claims map[string]any, name string) (int64, bool, error) {
	v, ok := claims[name]
	if !ok {
		return 0, false, nil
	}
	num, ok := v.(json.Number)
	if !ok {
		return 0, false, fmt.Errorf("%q is not a number", name)
	}
	if i, err := strconv.ParseInt(string(num), 10, 64); err == nil {
		const maxSec = math.MaxInt64 / int64(time.Second)
		switch {
		case i > maxSec:
			return math.MaxInt64, true, nil
		case i < -maxSec:
			return math.MinInt64, true, nil
		}
		return i * 1e9, true, nil
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false, fmt.Errorf("%q is not a number", name)
	}
	ns := f * 1e9
	switch {
	case ns >= math.MaxInt64:
		return math.MaxInt64, true, nil
	case ns <= math.MinInt64:
		return math.MinInt64, true, nil
	}
	return int64(ns), true, nil
}

// audience reads "aud": absent, a string, or an array of strings.
func audience(v any) ([]string, error) {
	switch a := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{a}, nil
	case []any:
		out := make([]string, len(a))
		for i, e := range a {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New(`"aud" array holds a non-string`)
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, errors.New(`"aud" is neither a string nor an array`)
}

// since is a-b (unix ns) as a duration for a message, saturated and rounded to seconds.
func since(a, b int64) time.Duration {
	return time.Unix(0, a).Sub(time.Unix(0, b)).Round(time.Second)
}

// satAdd is a+b clamped to the int64 range.
func satAdd(a, b int64) int64 {
	s := a + b
	switch {
	case b > 0 && s < a:
		return math.MaxInt64
	case b < 0 && s > a:
		return math.MinInt64
	}
	return s
}

// checkCompact requires the JWS compact form with canonical base64url segments: three
// segments, only the URL alphabet, no padding, and zero unused trailing bits, so no two token
// strings carry the same bytes (the cache keys on the string).
func checkCompact(token string) error {
	seg, start := 0, 0
	for i := 0; i <= len(token); i++ {
		if i < len(token) && token[i] != '.' {
			if !isB64URL(token[i]) {
				return newError(ReasonMalformed, "", "byte %d is not base64url", i)
			}
			continue
		}
		if err := checkSegment(token[start:i]); err != nil {
			return err
		}
		seg++
		start = i + 1
	}
	switch {
	case seg == 5:
		return newError(ReasonMalformed, "", "JWE (encrypted tokens) not supported")
	case seg != 3:
		return newError(ReasonMalformed, "", "%d segments, want 3", seg)
	}
	return nil
}

func checkSegment(s string) error {
	if len(s) == 0 {
		return nil // an empty signature is refused by the algorithm check, a payload by JSON
	}
	last := b64Value(s[len(s)-1])
	switch len(s) % 4 {
	case 1:
		return newError(ReasonMalformed, "", "base64url segment of impossible length")
	case 2:
		if last&0x0f != 0 {
			return newError(ReasonMalformed, "", "non-canonical base64url")
		}
	case 3:
		if last&0x03 != 0 {
			return newError(ReasonMalformed, "", "non-canonical base64url")
		}
	}
	return nil
}

func isB64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

func b64Value(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c - 'A'
	case 'a' <= c && c <= 'z':
		return c - 'a' + 26
	case '0' <= c && c <= '9':
		return c - '0' + 52
	case c == '-':
		return 62
	}
	return 63
}
