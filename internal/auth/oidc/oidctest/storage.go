package oidctest

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequest is an auth request in the OP's storage.
type authRequest struct {
	id       string
	oidc     *zoidc.AuthRequest
	sub      string
	done     bool
	authTime time.Time
}

func (a *authRequest) GetID() string                       { return a.id }
func (a *authRequest) GetACR() string                      { return "" }
func (a *authRequest) GetAMR() []string                    { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string               { return []string{a.oidc.ClientID} }
func (a *authRequest) GetAuthTime() time.Time              { return a.authTime }
func (a *authRequest) GetClientID() string                 { return a.oidc.ClientID }
func (a *authRequest) GetNonce() string                    { return a.oidc.Nonce }
func (a *authRequest) GetRedirectURI() string              { return a.oidc.RedirectURI }
func (a *authRequest) GetScopes() []string                 { return a.oidc.Scopes }
func (a *authRequest) GetState() string                    { return a.oidc.State }
func (a *authRequest) GetSubject() string                  { return a.sub }
func (a *authRequest) Done() bool                          { return a.done }
func (a *authRequest) GetResponseType() zoidc.ResponseType { return a.oidc.ResponseType }
func (a *authRequest) GetResponseMode() zoidc.ResponseMode { return a.oidc.ResponseMode }
func (a *authRequest) GetCodeChallenge() *zoidc.CodeChallenge {
	if a.oidc.CodeChallenge == "" {
		return nil
	}
	return &zoidc.CodeChallenge{Challenge: a.oidc.CodeChallenge, Method: a.oidc.CodeChallengeMethod}
}

type accessToken struct {
	id, sub, refreshID string
	scopes             []string
	expires            time.Time
}

type refreshToken struct {
	token, sub, accessID string
	scopes               []string
	authTime             time.Time
}

// refreshRequest is a refresh token presented at the token endpoint.
type refreshRequest struct {
	r        *refreshToken
	clientID string
}

func (r *refreshRequest) GetAMR() []string            { return []string{"pwd"} }
func (r *refreshRequest) GetAudience() []string       { return []string{r.clientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.r.authTime }
func (r *refreshRequest) GetClientID() string         { return r.clientID }
func (r *refreshRequest) GetScopes() []string         { return r.r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.r.sub }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.r.scopes = s }

// opStore is the OP's storage: one client, the test's users, tokens in memory.
type opStore struct {
	p         *Provider
	key       *ecdsa.PrivateKey
	kid       string
	accessTTL atomic.Int64 // time.Duration
	client    *client

	mu       sync.Mutex
	users    map[string]*User // by subject
	seq      int
	requests map[string]*authRequest
	codes    map[string]string // code -> request id
	tokens   map[string]*accessToken
	refresh  map[string]*refreshToken
}

func (s *opStore) nextID(kind string) string {
	s.seq++
	b := make([]byte, 8)
	rand.Read(b)
	return fmt.Sprintf("%s-%d-%x", kind, s.seq, b)
}

func (s *opStore) CreateAuthRequest(_ context.Context, r *zoidc.AuthRequest, _ string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &authRequest{id: s.nextID("req"), oidc: r}
	s.requests[a.id] = a
	return a, nil
}

func (s *opStore) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.requests[id]; ok {
		return a, nil
	}
	return nil, errors.New("no such auth request")
}

func (s *opStore) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errors.New("invalid code")
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *opStore) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *opStore) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for c, rid := range s.codes {
		if rid == id {
			delete(s.codes, c)
		}
	}
	return nil
}

func (s *opStore) newAccessToken(sub, refreshID string, scopes []string) *accessToken {
	t := &accessToken{id: s.nextID("at"), sub: sub, refreshID: refreshID, scopes: scopes, expires: time.Now().Add(time.Duration(s.accessTTL.Load()))}
	s.tokens[t.id] = t
	return t
}

func (s *opStore) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.newAccessToken(r.GetSubject(), "", r.GetScopes())
	return t.id, t.expires, nil
}

func (s *opStore) CreateAccessAndRefreshTokens(_ context.Context, r op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	authTime := time.Now()
	if a, ok := r.(*authRequest); ok {
		authTime = a.authTime
	}
	if current != "" {
		old, ok := s.refresh[current]
		if !ok {
			return "", "", time.Time{}, op.ErrInvalidRefreshToken
		}
		delete(s.refresh, current) // rotation: a refresh token is used once
		authTime = old.authTime
	}
	rt := &refreshToken{token: s.nextID("rt"), sub: r.GetSubject(), scopes: r.GetScopes(), authTime: authTime}
	at := s.newAccessToken(rt.sub, rt.token, rt.scopes)
	rt.accessID = at.id
	s.refresh[rt.token] = rt
	return at.id, rt.token, at.expires, nil
}

func (s *opStore) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refresh[token]
	if !ok {
		return nil, op.ErrInvalidRefreshToken
	}
	cp := *rt
	return &refreshRequest{&cp, s.client.id}, nil
}

func (s *opStore) TerminateSession(_ context.Context, sub, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, rt := range s.refresh {
		if rt.sub == sub {
			delete(s.refresh, k)
		}
	}
	return nil
}

func (s *opStore) RevokeToken(context.Context, string, string, string) *zoidc.Error { return nil }

func (s *opStore) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt, ok := s.refresh[token]; ok {
		return rt.sub, rt.token, nil
	}
	return "", "", op.ErrInvalidRefreshToken
}

type opKey struct {
	kid string
	key *ecdsa.PrivateKey
}

func (k opKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k opKey) Algorithm() jose.SignatureAlgorithm          { return jose.ES256 }
func (k opKey) ID() string                                  { return k.kid }
func (k opKey) Use() string                                 { return "sig" }

// signing is the private half, public the JWKS entry.
type signingKey struct{ opKey }

func (k signingKey) Key() any { return k.key }

type publicKey struct{ opKey }

func (k publicKey) Key() any { return &k.key.PublicKey }

func (s *opStore) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{opKey{s.kid, s.key}}, nil
}

func (s *opStore) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}

func (s *opStore) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{opKey{s.kid, s.key}}}, nil
}

func (s *opStore) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if id != s.client.id {
		return nil, errors.New("no such client")
	}
	return s.client, nil
}

func (s *opStore) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id != s.client.id || secret != s.p.ClientSecret {
		return errors.New("bad client credentials")
	}
	return nil
}

func (s *opStore) SetUserinfoFromScopes(_ context.Context, ui *zoidc.UserInfo, sub, _ string, scopes []string) error {
	ui.Subject = sub
	s.mu.Lock()
	u := s.users[sub]
	s.mu.Unlock()
	if u == nil {
		return nil
	}
	if slices.Contains(scopes, zoidc.ScopeEmail) && u.Email != "" {
		ui.Email = u.Email
		ui.EmailVerified = true
	}
	if slices.Contains(scopes, zoidc.ScopeProfile) {
		ui.Name = u.Name
	}
	for k, v := range u.Claims { // into the ID token (and userinfo) whatever the scopes
		ui.AppendClaims(k, v)
	}
	return nil
}

// SetUserinfoFromToken answers the userinfo endpoint for an access token.
func (s *opStore) SetUserinfoFromToken(ctx context.Context, ui *zoidc.UserInfo, tokenID, _, _ string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expires) {
		return errors.New("invalid access token")
	}
	return s.SetUserinfoFromScopes(ctx, ui, t.sub, "", t.scopes)
}

func (s *opStore) SetIntrospectionFromToken(context.Context, *zoidc.IntrospectionResponse, string, string, string) error {
	return nil
}

// GetPrivateClaimsFromScopes gives the claims of JWT access tokens (the client's are opaque).
func (s *opStore) GetPrivateClaimsFromScopes(_ context.Context, sub, _ string, _ []string) (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[sub]; u != nil {
		return maps.Clone(u.Claims), nil
	}
	return nil, nil
}

func (s *opStore) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("no client keys")
}

func (s *opStore) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *opStore) Health(context.Context) error { return nil }

// client is the RP's registration at the OP.
type client struct {
	id         string
	idTTL      time.Duration
	mu         sync.Mutex
	redirects  []string
	postLogout []string
}

func (c *client) GetID() string { return c.id }
func (c *client) RedirectURIs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.redirects)
}
func (c *client) PostLogoutRedirectURIs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.postLogout)
}
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() zoidc.AuthMethod        { return zoidc.AuthMethodBasic }
func (c *client) ResponseTypes() []zoidc.ResponseType {
	return []zoidc.ResponseType{zoidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []zoidc.GrantType {
	return []zoidc.GrantType{zoidc.GrantTypeCode, zoidc.GrantTypeRefreshToken}
}
func (c *client) LoginURL(id string) string            { return "/login?authRequestID=" + url.QueryEscape(id) }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration       { return c.idTTL }
func (c *client) DevMode() bool                        { return false }
func (c *client) IsScopeAllowed(string) bool           { return false }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
