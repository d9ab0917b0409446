package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// tokenResponse is a token endpoint's answer (RFC 6749 §5.1 and §5.2, OpenID Connect Core
// §3.1.3.3).
type tokenResponse struct {
	AccessToken  string          `json:"access_token"`
	TokenType    string          `json:"token_type"`
	ExpiresIn    json.RawMessage `json:"expires_in"`
	RefreshToken string          `json:"refresh_token"`
	IDToken      string          `json:"id_token"`
	Error        string          `json:"error"`
}

// expiresIn reads expires_in, a number of seconds (some providers send it as a string); 0
// when absent or not a positive number.
func (t *tokenResponse) expiresIn() time.Duration {
	s := strings.Trim(string(t.ExpiresIn), `"`)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || f > 10*365*24*3600 {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

// tokenError is a failed token request. Rejected means the provider refused the grant (a
// 4xx: a used or expired code, a revoked refresh token): retrying will not help. Otherwise
// the provider could not be reached or failed.
type tokenError struct {
	Rejected bool
	Code     string // the OAuth error code, when the provider sent one
	Err      error
}

func (e *tokenError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("oidc: token endpoint: %s: %v", e.Code, e.Err)
	}
	return "oidc: token endpoint: " + e.Err.Error()
}

func (e *tokenError) Unwrap() error { return e.Err }

// rejected reports whether err is a definitive refusal by the provider.
func rejected(err error) bool {
	var te *tokenError
	return errors.As(err, &te) && te.Rejected
}

// tokenRequest POSTs form to the token endpoint, authenticating the client with
// client_secret_basic (RFC 6749 §2.3.1: id and secret form-encoded, then Basic) or, when the
// provider only takes that, client_secret_post.
func (rp *RP) tokenRequest(ep *endpoints, form url.Values) (*tokenResponse, error) {
	if ep.postAuth {
		form.Set("client_id", rp.cfg.ClientID)
		form.Set("client_secret", rp.cfg.ClientSecret)
	} else if rp.cfg.ClientSecret == "" {
		form.Set("client_id", rp.cfg.ClientID) // a public client: PKCE only
	}
	ctx, cancel := context.WithTimeout(rp.ctx, rp.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.token, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &tokenError{Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if !ep.postAuth && rp.cfg.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(rp.cfg.ClientID), url.QueryEscape(rp.cfg.ClientSecret))
	}
	resp, err := rp.client.Do(req)
	if err != nil {
		return nil, &tokenError{Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentSize+1))
	if err != nil {
		return nil, &tokenError{Err: err}
	}
	if len(body) > MaxDocumentSize {
		return nil, &tokenError{Err: fmt.Errorf("response over %d bytes", MaxDocumentSize)}
	}
	var tr tokenResponse
	jsonErr := json.Unmarshal(body, &tr)
	if resp.StatusCode != http.StatusOK {
		te := &tokenError{
			Rejected: resp.StatusCode >= 400 && resp.StatusCode < 500,
			Err:      fmt.Errorf("status %d", resp.StatusCode),
		}
		if jsonErr == nil && tokenChars(tr.Error) && len(tr.Error) < 64 {
			te.Code = tr.Error
		}
		return nil, te
	}
	if jsonErr != nil {
		return nil, &tokenError{Err: fmt.Errorf("response is not JSON: %w", jsonErr)}
	}
	if tr.AccessToken == "" || !strings.EqualFold(tr.TokenType, "bearer") {
		return nil, &tokenError{Err: fmt.Errorf("no bearer access token (token_type %.20q)", tr.TokenType)}
	}
	for _, t := range [...]string{tr.AccessToken, tr.RefreshToken, tr.IDToken} {
		if len(t) > MaxTokenSize || !tokenChars(t) {
			return nil, &tokenError{Err: errors.New("a token is too large or has characters a token cannot have")}
		}
	}
	return &tr, nil
}

// exchangeCode redeems an authorization code (RFC 6749 §4.1.3 with the PKCE verifier, RFC
// 7636 §4.5).
func (rp *RP) exchangeCode(ep *endpoints, code, redirectURI, verifier string) (*tokenResponse, error) {
	return rp.tokenRequest(ep, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
	})
}

// refreshGrant uses a refresh token (RFC 6749 §6).
func (rp *RP) refreshGrant(ep *endpoints, refreshToken string) (*tokenResponse, error) {
	return rp.tokenRequest(ep, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	})
}
