package oidc

// An in-process OpenID provider for the tests: zitadel/oidc's op package (a certified OP
// implementation) over an httptest TLS server, backed by a small in-memory storage written
// here. Its login page logs in whichever user the test chose, without a form.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	testClientID     = "dashboard"
	testClientSecret = "s3cret with spaces&symbols"
)

// testUser is a user of the test OP.
type testUser struct {
	sub, email, name string
}

// testOP is an OpenID provider for one test.
type testOP struct {
	t      *testing.T
	srv    *httptest.Server
	issuer string
	op     *op.Provider
	store  *opStore

	// user is who the login page logs in; nil makes it deny the login (access_denied).
	user atomic.Pointer[testUser]
	// counters of token endpoint grants and end_session calls.
	codeGrants, refreshGrants, endSessions atomic.Int64
	// failTokens makes the token endpoint answer 503.
	failTokens atomic.Bool
	// discoveryHits counts discovery fetches.
	discoveryHits atomic.Int64
	// formLogin makes the login page a form the user submits (as at a real provider, the
	// redirect back to the app then starts from the provider's page) instead of an
	// immediate redirect.
	formLogin atomic.Bool
}

// newTestOP starts an OP. accessTTL and idTTL are the tokens' lifetimes.
func newTestOP(t *testing.T, accessTTL, idTTL time.Duration) *testOP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	o := &testOP{t: t}
	o.user.Store(&testUser{sub: "alice-id", email: "alice@example.com", name: "Alice"})
	o.store = &opStore{
		o:         o,
		key:       key,
		kid:       "k1",
		accessTTL: accessTTL,
		requests:  map[string]*authRequest{},
		codes:     map[string]string{},
		tokens:    map[string]*accessToken{},
		refresh:   map[string]*refreshToken{},
		client: &testClient{
			idTTL: idTTL,
		},
	}
	o.srv = httptest.NewUnstartedServer(nil)
	o.issuer = "https://" + o.srv.Listener.Addr().String()
	var cryptoKey [32]byte
	rand.Read(cryptoKey[:])
	o.op, err = op.NewProvider(&op.Config{
		CryptoKey:                cryptoKey,
		DefaultLogoutRedirectURI: "/logged-out",
		CodeMethodS256:           true,
		GrantTypeRefreshToken:    true,
	}, o.store, op.StaticIssuer(o.issuer))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", o.login)
	mux.HandleFunc("/logged-out", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "logged out at the provider") })
	mux.Handle("/", o.op)
	o.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			o.discoveryHits.Add(1)
		case "/oauth/token":
			if o.failTokens.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			r.ParseForm()
			switch r.PostForm.Get("grant_type") {
			case "authorization_code":
				o.codeGrants.Add(1)
			case "refresh_token":
				o.refreshGrants.Add(1)
			}
		case "/end_session":
			o.endSessions.Add(1)
		}
		mux.ServeHTTP(w, r)
	})
	o.srv.StartTLS()
	t.Cleanup(o.srv.Close)
	return o
}

// allowRedirect registers a callback URL (redirect_uri) and a post-logout URL for the client.
func (o *testOP) allowRedirect(callback, postLogout string) {
	c := o.store.client
	c.mu.Lock()
	defer c.mu.Unlock()
	c.redirects = append(c.redirects, callback)
	if postLogout != "" {
		c.postLogout = append(c.postLogout, postLogout)
	}
}

// revokeAll makes every refresh token invalid (refresh then fails with invalid_grant).
func (o *testOP) revokeAll() {
	o.store.mu.Lock()
	defer o.store.mu.Unlock()
	clear(o.store.refresh)
}

// login is the OP's login page: it completes the auth request as o.user, or denies it.
func (o *testOP) login(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	if o.formLogin.Load() && r.Method != http.MethodPost {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<html><body><form method="post" action="/login?authRequestID=%s"><button id="signin">Sign in</button></form></body></html>`,
			url.QueryEscape(id))
		return
	}
	u := o.user.Load()
	s := o.store
	s.mu.Lock()
	req, ok := s.requests[id]
	if ok && u != nil {
		req.sub, req.done, req.authTime = u.sub, true, time.Now()
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, "unknown auth request", http.StatusBadRequest)
		return
	}
	if u == nil {
		q := url.Values{"error": {"access_denied"}, "state": {req.oidc.State}}
		http.Redirect(w, r, req.oidc.RedirectURI+"?"+q.Encode(), http.StatusFound)
		return
	}
	http.Redirect(w, r, o.op.AuthorizationEndpoint().Absolute(o.issuer)+"/callback?id="+url.QueryEscape(id), http.StatusFound)
}

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
type refreshRequest struct{ r *refreshToken }

func (r *refreshRequest) GetAMR() []string            { return []string{"pwd"} }
func (r *refreshRequest) GetAudience() []string       { return []string{testClientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.r.authTime }
func (r *refreshRequest) GetClientID() string         { return testClientID }
func (r *refreshRequest) GetScopes() []string         { return r.r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.r.sub }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.r.scopes = s }

// opStore is the OP's storage: one client, the test's users, tokens in memory.
type opStore struct {
	o         *testOP
	key       *ecdsa.PrivateKey
	kid       string
	accessTTL time.Duration
	client    *testClient

	mu       sync.Mutex
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
	t := &accessToken{id: s.nextID("at"), sub: sub, refreshID: refreshID, scopes: scopes, expires: time.Now().Add(s.accessTTL)}
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
	return &refreshRequest{&cp}, nil
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
	if id != testClientID {
		return nil, errors.New("no such client")
	}
	return s.client, nil
}

func (s *opStore) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id != testClientID || secret != testClientSecret {
		return errors.New("bad client credentials")
	}
	return nil
}

func (s *opStore) SetUserinfoFromScopes(_ context.Context, ui *zoidc.UserInfo, sub, _ string, scopes []string) error {
	ui.Subject = sub
	u := s.o.user.Load()
	if u == nil || u.sub != sub {
		return nil
	}
	if slices.Contains(scopes, zoidc.ScopeEmail) {
		ui.Email = u.email
		ui.EmailVerified = true
	}
	if slices.Contains(scopes, zoidc.ScopeProfile) {
		ui.Name = u.name
	}
	return nil
}

func (s *opStore) SetUserinfoFromToken(context.Context, *zoidc.UserInfo, string, string, string) error {
	return nil
}

func (s *opStore) SetIntrospectionFromToken(context.Context, *zoidc.IntrospectionResponse, string, string, string) error {
	return nil
}

func (s *opStore) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return map[string]any{"groups": []string{"staff", "ops"}}, nil
}

func (s *opStore) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("no client keys")
}

func (s *opStore) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *opStore) Health(context.Context) error { return nil }

// testClient is the RP's registration at the OP.
type testClient struct {
	idTTL      time.Duration
	mu         sync.Mutex
	redirects  []string
	postLogout []string
}

func (c *testClient) GetID() string { return testClientID }
func (c *testClient) RedirectURIs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.redirects)
}
func (c *testClient) PostLogoutRedirectURIs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.postLogout)
}
func (c *testClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *testClient) AuthMethod() zoidc.AuthMethod        { return zoidc.AuthMethodBasic }
func (c *testClient) ResponseTypes() []zoidc.ResponseType {
	return []zoidc.ResponseType{zoidc.ResponseTypeCode}
}
func (c *testClient) GrantTypes() []zoidc.GrantType {
	return []zoidc.GrantType{zoidc.GrantTypeCode, zoidc.GrantTypeRefreshToken}
}
func (c *testClient) LoginURL(id string) string            { return "/login?authRequestID=" + url.QueryEscape(id) }
func (c *testClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *testClient) IDTokenLifetime() time.Duration       { return c.idTTL }
func (c *testClient) DevMode() bool                        { return false }
func (c *testClient) IsScopeAllowed(string) bool           { return false }
func (c *testClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *testClient) ClockSkew() time.Duration             { return 0 }
func (c *testClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *testClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
