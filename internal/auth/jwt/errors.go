package jwt

import (
	"errors"
	"fmt"
	"strings"
)

// Reason classifies why a token was refused. It is stable, short and safe to put in a log field
// or a metric label; Description gives the text a client may see.
type Reason string

// The reasons Verify reports. All but ReasonJWKSUnavailable are the client's fault (RFC 6750
// "invalid_token"); ReasonJWKSUnavailable means the gateway could not get the signing keys, so a
// caller may prefer to answer 503 for it.
const (
	ReasonMalformed       Reason = "malformed"        // not a compact JWS with a JSON object payload, too large, bad claim types
	ReasonUnknownIssuer   Reason = "unknown_issuer"   // no "iss", or no provider for it
	ReasonAlgNotAllowed   Reason = "alg_not_allowed"  // "none", or an algorithm the provider does not accept
	ReasonUnknownKID      Reason = "unknown_kid"      // the provider's key set has no key with the token's "kid"
	ReasonBadSignature    Reason = "bad_signature"    // no key of the right type verifies the signature
	ReasonExpired         Reason = "expired"          // "exp" is further in the past than the clock skew
	ReasonNotYetValid     Reason = "not_yet_valid"    // "nbf" is further in the future than the clock skew
	ReasonIssuedInFuture  Reason = "issued_in_future" // "iat" is further in the future than the clock skew
	ReasonBadAudience     Reason = "bad_audience"     // none of the provider's audiences is in "aud"
	ReasonJWKSUnavailable Reason = "jwks_unavailable" // the remote key set could not be fetched (or expired)
	ReasonInvalidConfig   Reason = "invalid_config"   // New, NewRemote or ParseJWKS refused its input (never from Verify)
	reasonUnknown         Reason = "unknown"          // not an *Error
)

// Description is a short text for a WWW-Authenticate error_description: it names the problem
// class only, never a claim value, key id or issuer taken from the token.
func (r Reason) Description() string {
	switch r {
	case ReasonMalformed:
		return "malformed token"
	case ReasonUnknownIssuer:
		return "unknown issuer"
	case ReasonAlgNotAllowed:
		return "signing algorithm not allowed"
	case ReasonUnknownKID:
		return "unknown signing key"
	case ReasonBadSignature:
		return "invalid signature"
	case ReasonExpired:
		return "token expired"
	case ReasonNotYetValid:
		return "token not yet valid"
	case ReasonIssuedInFuture:
		return "token issued in the future"
	case ReasonBadAudience:
		return "audience not allowed"
	case ReasonJWKSUnavailable:
		return "signing keys unavailable"
	default:
		return "invalid token"
	}
}

// Error is what Verify (and New, ParseJWKS, the key sources) return: a Reason for the caller's
// decision and response, the provider it concerns when one was selected, and a precise Detail
// for logs. Neither Error() nor Detail ever contains the token; values taken from an unverified
// token (issuer, kid) are quoted and truncated.
type Error struct {
	Reason   Reason
	Provider string // the selected provider's name; "" before one was selected
	Detail   string // precise, for logs
	Err      error  // underlying cause (a fetch error, a JSON error), if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("jwt: ")
	b.WriteString(string(e.Reason))
	if e.Provider != "" {
		b.WriteString(" (provider ")
		b.WriteString(e.Provider)
		b.WriteString(")")
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, &Error{Reason: r}) match any *Error with reason r, so callers can test
// for a class without errors.As.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason && t.Provider == "" && t.Detail == "" && t.Err == nil
}

// ReasonOf returns err's Reason, or "unknown" when err is not (or does not wrap) an *Error.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return reasonUnknown
}

// Challenge renders a WWW-Authenticate value for a refused request (RFC 6750 §3): with err nil
// (no token was presented) just the scheme and realm; otherwise error="invalid_token" and the
// reason's short description. realm may be empty.
func Challenge(realm string, err error) string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	if realm != "" {
		b.WriteString(sep)
		b.WriteString(`realm=`)
		b.WriteString(quote(realm))
		sep = ", "
	}
	if err != nil {
		b.WriteString(sep)
		b.WriteString(`error="invalid_token", error_description=`)
		b.WriteString(quote(ReasonOf(err).Description()))
	}
	return b.String()
}

// quote makes an RFC 7230 quoted-string, dropping bytes a header value cannot carry.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\t' || (c >= 0x20 && c != 0x7f):
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// untrusted formats a value read from an unverified token for a log detail: quoted, at most 64
// bytes of it.
func untrusted(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// clip bounds an error from parsing a token (which may quote the token's bytes) for a log.
func clip(err error) error {
	const max = 128
	if msg := err.Error(); len(msg) > max {
		return fmt.Errorf("%s...", strings.ToValidUTF8(msg[:max], ""))
	}
	return err
}

func newError(r Reason, provider, format string, args ...any) *Error {
	return &Error{Reason: r, Provider: provider, Detail: fmt.Sprintf(format, args...)}
}
