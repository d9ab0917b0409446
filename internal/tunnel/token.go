package tunnel

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TokenClaims are what a node token says: which node of which project, and the rotation it
// was issued for (the node's rotate annotation then; a rotation refuses older tokens).
type TokenClaims struct {
	Project  string `json:"prj"`
	Node     string `json:"node"`
	Rotation string `json:"rot,omitempty"`
	// NodeUID is the subject: a node deleted and created again under the same name does not
	// accept the old node's tokens.
	NodeUID string `json:"-"`
}

// tokenAudience is the audience of node tokens.
const tokenAudience = "apoxy-tunnel"

// Signer issues and verifies node tokens: HS256 JWTs with a key per project derived from the
// server secret, so a project's tokens mean nothing in another project and no key is stored.
type Signer struct{ secret []byte }

// NewSigner makes a Signer from the server secret.
func NewSigner(secret []byte) *Signer { return &Signer{secret: secret} }

func (s *Signer) key(project string) []byte {
	h := hmac.New(sha256.New, s.secret)
	h.Write([]byte("tunnel-token\x00" + project))
	return h.Sum(nil)
}

// Issue signs a token for c.
func (s *Signer) Issue(c TokenClaims, now time.Time) (string, error) {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: s.key(c.Project)}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	std := jwt.Claims{Subject: c.NodeUID, Audience: jwt.Audience{tokenAudience}, IssuedAt: jwt.NewNumericDate(now), Issuer: "apoxy"}
	return jwt.Signed(sig).Claims(std).Claims(c).Serialize()
}

// ErrBadToken is a token that does not verify.
var ErrBadToken = errors.New("tunnel: the token is not valid")

// Verify checks a token's signature with its project's key and returns its claims.
func (s *Signer) Verify(token string) (TokenClaims, error) {
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		return TokenClaims{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	var unverified TokenClaims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil || unverified.Project == "" {
		return TokenClaims{}, ErrBadToken
	}
	var c TokenClaims
	var std jwt.Claims
	if err := tok.Claims(s.key(unverified.Project), &std, &c); err != nil {
		return TokenClaims{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if err := std.Validate(jwt.Expected{AnyAudience: jwt.Audience{tokenAudience}, Issuer: "apoxy"}); err != nil {
		return TokenClaims{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	c.NodeUID = std.Subject
	return c, nil
}
