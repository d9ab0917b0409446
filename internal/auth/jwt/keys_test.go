package jwt

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

func TestParseJWKS(t *testing.T) {
	doc := jwks(t,
		rs256(0, "rsa"),
		es256("p256"),
		signer{key: ecKey(elliptic.P384()), kid: "p384"},
		signer{key: ecKey(elliptic.P521()), kid: "p521"},
		signer{key: edKey(), kid: "ed"},
		signer{key: hmacSecret, kid: "oct"},
	)
	// Add keys to be skipped: an encryption key, an unknown type, an unknown curve.
	var m map[string][]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	enc := must(json.Marshal(jose.JSONWebKey{Key: &rsaKey(1).PublicKey, KeyID: "enc", Use: "enc"}))
	m["keys"] = append(m["keys"], enc,
		json.RawMessage(`{"kty":"AKP","alg":"ML-DSA-44","pub":"AAAA","kid":"pq"}`),
		json.RawMessage(`{"kty":"OKP","crv":"X25519","x":"AAAA","kid":"x"}`),
		json.RawMessage(`{"kty":"EC","crv":"secp256k1","x":"AAAA","y":"AAAA","kid":"k1"}`),
		json.RawMessage(`{"kty":"RSA","alg":"RSA-OAEP-256","n":"AQAB","e":"AQAB","kid":"oaep"}`),
	)
	ks, err := ParseJWKS(must(json.Marshal(m)))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(ks.KeyIDs(), ","), "rsa,p256,p384,p521,ed,oct"; got != want {
		t.Errorf("kids = %s, want %s", got, want)
	}
	if ks.Skipped != 5 || ks.Len() != 6 {
		t.Errorf("Len %d Skipped %d", ks.Len(), ks.Skipped)
	}
	// A remote set never takes oct keys.
	rs, err := parseJWKS(doc, false)
	if err != nil || rs.hasSymmetric() || rs.Len() != 5 {
		t.Errorf("remote parse: %v, %d keys", err, rs.Len())
	}
	// Member names are case-sensitive: a "KTY" or "USE" member does not disguise an oct or an
	// encryption key.
	oct := `{"kty":"oct","KTY":"RSA","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY","kid":"o"}`
	encKey := strings.Replace(string(enc), `"use":"enc"`, `"use":"enc","USE":"sig"`, 1)
	cased, err := parseJWKS([]byte(`{"keys":[`+oct+`,`+encKey+`,`+string(must(json.Marshal(rs256(0, "r").public())))+`]}`), false)
	if err != nil || cased.Len() != 1 || cased.Skipped != 2 {
		t.Errorf("case variants: %v, kids %v, skipped %d", err, cased.KeyIDs(), cased.Skipped)
	}
	// Private keys: only the public part is kept.
	priv := must(json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: rsaKey(0), KeyID: "p"}, {Key: ecKey(elliptic.P256()), KeyID: "e"}, {Key: edKey(), KeyID: "d"}}}))
	ps, err := ParseJWKS(priv)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ps.keys {
		switch k.pub.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			t.Errorf("key %s kept as %T", k.kid, k.pub)
		}
	}
}

func TestParseJWKSErrors(t *testing.T) {
	rsa1024 := must(json.Marshal(jose.JSONWebKey{Key: &genRSA(1024).PublicKey, KeyID: "small"}))
	many := make([]jose.JSONWebKey, MaxKeys+1)
	for i := range many {
		many[i] = jose.JSONWebKey{Key: &ecKey(elliptic.P256()).PublicKey, KeyID: fmt.Sprint(i)}
	}
	for name, tc := range map[string]struct{ doc, want string }{
		"empty":        {"", "not a JSON object"},
		"not json":     {"<html>", "not a JSON object"},
		"array":        {`[]`, "not a JSON object"},
		"no keys":      {`{}`, `no "keys"`},
		"keys null":    {`{"keys":null}`, `no "keys"`},
		"no usable":    {`{"keys":[{"kty":"OKP","crv":"X448","x":"AA"}]}`, "no usable key"},
		"empty keys":   {`{"keys":[]}`, "no usable key"},
		"key not obj":  {`{"keys":[42]}`, "key 0"},
		"no kty":       {`{"keys":[{"kid":"a"}]}`, `key 0 (kid "a"): no "kty"`},
		"broken rsa":   {`{"keys":[{"kty":"RSA","kid":"r","n":"!!","e":"AQAB"}]}`, `key 0 (kid "r")`},
		"broken ec":    {`{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"AAAA","y":"AAAA"}]}`, `key 0 (kid "e")`},
		"small rsa":    {`{"keys":[` + string(rsa1024) + `]}`, "1024 bits, under the 2048-bit minimum"},
		"short oct":    {`{"keys":[{"kty":"oct","k":"AAAA","kid":"o"}]}`, "under the 256-bit minimum"},
		"alg mismatch": {`{"keys":[` + strings.Replace(string(must(json.Marshal(jose.JSONWebKey{Key: &ecKey(elliptic.P256()).PublicKey, KeyID: "e"}))), `{`, `{"alg":"ES384",`, 1) + `]}`, "does not fit"},
		"too many":     {string(must(json.Marshal(jose.JSONWebKeySet{Keys: many}))), "more than 64"},
		"too large":    {`{"keys":[],"pad":"` + strings.Repeat("a", MaxJWKSSize) + `"}`, "over the"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseJWKS([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			wantReason(t, err, ReasonInvalidConfig)
		})
	}
}
