package jwt

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// MaxJWKSSize bounds a JWKS document (local or fetched): larger ones are refused unread.
const MaxJWKSSize = 1 << 20

// MaxKeys bounds the usable keys in one set: a token without "kid" is tried against every key
// of its type, so the bound is also the worst-case signature checks per token.
const MaxKeys = 64

// minRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3 requires 2048).
const minRSABits = 2048

// minHMACBytes is the shortest oct key accepted: HS256 needs a 256-bit key (RFC 7518 §3.2).
const minHMACBytes = 32

// KeySource gives a provider its verification keys. *KeySet (a fixed, local set) and *Remote (a
// JWKS URI, cached and refreshed) implement it.
type KeySource interface {
	// Keys returns the set to verify a token with. kid is the token's "kid" header ("" when it
	// has none); a source may use a kid the set lacks as a hint to refetch (rate-limited). The
	// error, when there is no usable set, should be an *Error with ReasonJWKSUnavailable.
	Keys(ctx context.Context, kid string) (*KeySet, error)
	// Current returns the set Keys would verify with at now, without I/O or blocking, or nil when
	// none is usable. The verified-token cache serves an entry only while Current still returns
	// the very set that verified it: a changed or expired set invalidates the entries.
	Current(now time.Time) *KeySet
}

// KeySet is a parsed JWKS: the usable public keys (and, for local sets, HMAC secrets). It is
// immutable, and also a KeySource that always returns itself (a local JWKS, e.g. from a Secret).
type KeySet struct {
	keys []key
	// Skipped counts the document's keys that were ignored: unsupported types or curves,
	// "use":"enc", oct keys in a remote set.
	Skipped int
}

// key is one usable key.
type key struct {
	kid string
	alg string // the JWK's "alg"; "" allows any algorithm of the key's type
	pub any    // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte (oct)
}

// Keys returns s: a local set never changes.
func (s *KeySet) Keys(context.Context, string) (*KeySet, error) { return s, nil }

// Current returns s.
func (s *KeySet) Current(time.Time) *KeySet { return s }

// Len is the number of usable keys.
func (s *KeySet) Len() int { return len(s.keys) }

// KeyIDs lists the usable keys' "kid" values in document order ("" for keys without one).
func (s *KeySet) KeyIDs() []string {
	ids := make([]string, len(s.keys))
	for i, k := range s.keys {
		ids[i] = k.kid
	}
	return ids
}

// hasKID reports whether some key has this kid.
func (s *KeySet) hasKID(kid string) bool {
	for i := range s.keys {
		if s.keys[i].kid == kid {
			return true
		}
	}
	return false
}

// hasSymmetric reports whether the set holds an oct key.
func (s *KeySet) hasSymmetric() bool {
	for i := range s.keys {
		if _, ok := s.keys[i].pub.([]byte); ok {
			return true
		}
	}
	return false
}

// ParseJWKS parses a JWK Set (RFC 7517 §5) holding the keys of a local source: RSA (≥ 2048
// bits), EC on P-256, P-384 and P-521, Ed25519, and oct keys (≥ 256 bits, usable only with HS*).
// Keys of other types or curves and keys marked "use":"enc" are skipped (counted in Skipped),
// as RFC 7517 asks; a key of a supported type that does not parse, a document that is not a JWK
// Set, or one with no usable key is an error naming the key's index and kid. Private parts of a
// key are dropped: only the public key is kept.
func ParseJWKS(data []byte) (*KeySet, error) {
	return parseJWKS(data, true)
}

// parseJWKS is ParseJWKS; allowSymmetric false skips oct keys (a remote JWKS is public: a
// secret in it would be usable by anyone).
func parseJWKS(data []byte, allowSymmetric bool) (*KeySet, error) {
	if len(data) > MaxJWKSSize {
		return nil, jwksError("document is %d bytes, over the %d-byte limit", len(data), MaxJWKSSize)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, &Error{Reason: ReasonInvalidConfig, Detail: "JWKS is not a JSON object with a \"keys\" array", Err: err}
	}
	if doc.Keys == nil {
		return nil, jwksError("JWKS has no \"keys\" array")
	}
	s := &KeySet{}
	for i, raw := range doc.Keys {
		k, skip, err := parseKey(raw, allowSymmetric)
		if err != nil {
			return nil, &Error{Reason: ReasonInvalidConfig, Detail: fmt.Sprintf("JWKS key %d%s", i, kidSuffix(raw)), Err: err}
		}
		if skip {
			s.Skipped++
			continue
		}
		if len(s.keys) == MaxKeys {
			return nil, jwksError("JWKS has more than %d usable keys", MaxKeys)
		}
		s.keys = append(s.keys, k)
	}
	if len(s.keys) == 0 {
		return nil, jwksError("JWKS has no usable key (%d keys, %d skipped)", len(doc.Keys), s.Skipped)
	}
	return s, nil
}

func jwksError(format string, args ...any) *Error {
	return newError(ReasonInvalidConfig, "", format, args...)
}

// kidSuffix names a raw key's kid for an error message, when it has a short printable one.
func kidSuffix(raw json.RawMessage) string {
	var h struct {
		Kid string `json:"kid"`
	}
	if json.Unmarshal(raw, &h) != nil || h.Kid == "" {
		return ""
	}
	return " (kid " + untrusted(h.Kid) + ")"
}

// parseKey reads one JWK. skip reports a well-formed key this package does not use.
func parseKey(raw json.RawMessage, allowSymmetric bool) (k key, skip bool, err error) {
	// Look at the type first: go-jose refuses unknown types and curves, which RFC 7517 says to
	// ignore, while a broken key of a known type is the document's fault.
	// Members are looked up case-sensitively, as go-jose reads them.
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return key{}, false, fmt.Errorf("not a JSON object")
	}
	member := func(name string) string {
		var s string
		json.Unmarshal(members[name], &s)
		return s
	}
	kty, crv, use, alg := member("kty"), member("crv"), member("use"), member("alg")
	switch {
	case use != "" && use != "sig":
		return key{}, true, nil
	case kty == "RSA":
	case kty == "EC" && (crv == "P-256" || crv == "P-384" || crv == "P-521"):
	case kty == "OKP" && crv == "Ed25519":
	case kty == "oct" && allowSymmetric:
	case kty == "":
		return key{}, false, fmt.Errorf("no \"kty\"")
	default:
		return key{}, true, nil
	}
	if alg != "" && !knownAlgorithm(alg) {
		return key{}, true, nil // e.g. RSA-OAEP without "use"
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return key{}, false, err
	}
	if jwk.Use != "" && jwk.Use != "sig" {
		return key{}, true, nil
	}
	k = key{kid: jwk.KeyID, alg: jwk.Algorithm}
	switch pk := jwk.Key.(type) {
	case *rsa.PublicKey:
		k.pub = pk
	case *rsa.PrivateKey:
		k.pub = &pk.PublicKey
	case *ecdsa.PublicKey:
		k.pub = pk
	case *ecdsa.PrivateKey:
		k.pub = &pk.PublicKey
	case ed25519.PublicKey:
		k.pub = pk
	case ed25519.PrivateKey:
		k.pub = pk.Public().(ed25519.PublicKey)
	case []byte:
		if !allowSymmetric {
			return key{}, true, nil
		}
		if len(pk) < minHMACBytes {
			return key{}, false, fmt.Errorf("oct key is %d bits, under the %d-bit minimum", 8*len(pk), 8*minHMACBytes)
		}
		k.pub = bytes.Clone(pk)
	default:
		return key{}, true, nil
	}
	if pk, ok := k.pub.(*rsa.PublicKey); ok && pk.N.BitLen() < minRSABits {
		return key{}, false, fmt.Errorf("RSA key is %d bits, under the %d-bit minimum", pk.N.BitLen(), minRSABits)
	}
	if k.alg != "" && !keyFitsAlg(k.pub, k.alg) {
		return key{}, false, fmt.Errorf("key type does not fit its \"alg\" %s", untrusted(k.alg))
	}
	return k, false, nil
}

// Algorithms this package verifies, by family.
var (
	rsaAlgs  = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ecAlgs   = []string{"ES256", "ES384", "ES512"}
	edAlgs   = []string{"EdDSA"}
	hmacAlgs = []string{"HS256", "HS384", "HS512"}
)

// DefaultAlgorithms returns the algorithms a provider accepts when it lists none: every
// asymmetric one (HS* needs to be asked for, with a local key set).
func DefaultAlgorithms() []string { return slices.Concat(rsaAlgs, ecAlgs, edAlgs) }

// allJoseAlgs is every algorithm go-jose may parse for us; each provider narrows it.
var allJoseAlgs = func() []jose.SignatureAlgorithm {
	var out []jose.SignatureAlgorithm
	for _, fam := range [][]string{rsaAlgs, ecAlgs, edAlgs, hmacAlgs} {
		for _, a := range fam {
			out = append(out, jose.SignatureAlgorithm(a))
		}
	}
	return out
}()

func knownAlgorithm(alg string) bool {
	for _, a := range allJoseAlgs {
		if string(a) == alg {
			return true
		}
	}
	return false
}

func isHMAC(alg string) bool { return alg == "HS256" || alg == "HS384" || alg == "HS512" }

// keyFitsAlg reports whether pub may verify alg: the type must match (an RSA key is never an
// HMAC secret, which is what defeats algorithm confusion), the curve must be the algorithm's,
// and an HMAC key must be at least as long as the hash.
func keyFitsAlg(pub any, alg string) bool {
	switch pk := pub.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pk.Curve == elliptic.P256()
		case "ES384":
			return pk.Curve == elliptic.P384()
		case "ES512":
			return pk.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	case []byte:
		switch alg {
		case "HS256":
			return len(pk) >= 32
		case "HS384":
			return len(pk) >= 48
		case "HS512":
			return len(pk) >= 64
		}
	}
	return false
}
