// Package oidctest runs an OpenID provider in-process for tests: zitadel/oidc's op package (a
// certified OP implementation) over an httptest TLS server, backed by a small in-memory
// storage written here. It serves the issuer URL the test chooses (a real provider's, such as
// https://accounts.google.com, on a loopback address the test maps the name to, with a
// certificate from the test's CA), logs in the test's users with or without a login form, and
// counts what the relying party asked of it.
//
// Only tests import this package: it must never be linked into the apoxy binary.
package oidctest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// The client the provider registers when Options names none.
const (
	DefaultClientID     = "dashboard"
	DefaultClientSecret = "s3cret with spaces&symbols"
)

// Alice is the user logged in when Options names none.
var Alice = User{Login: "alice", Subject: "alice-id", Email: "alice@example.com", Name: "Alice",
	Claims: map[string]any{"groups": []string{"staff", "ops"}}}

// User is a user of the provider.
type User struct {
	// Login is the name typed into the login form (default: Subject).
	Login string
	// Subject is the "sub" claim.
	Subject string
	// Email and Name go into the ID token (and userinfo) for the "email" and "profile"
	// scopes.
	Email, Name string
	// Claims are added to the ID token whatever the scopes (e.g. Google's "hd").
	Claims map[string]any
}

func (u User) login() string {
	if u.Login != "" {
		return u.Login
	}
	return u.Subject
}

// Options configure a Provider. Zero values take the documented defaults.
type Options struct {
	// Issuer is the issuer URL ("https://host[:port]"), which every endpoint is under.
	// Default: "https://" + the listener's address.
	Issuer string
	// Addr is where the provider listens (default "127.0.0.1:0"). With an Issuer whose host
	// is a name, the test maps that name to this address (the issuer's port, 443 when it has
	// none, must be Addr's).
	Addr string
	// Certificate is served over TLS; default httptest's certificate (valid for 127.0.0.1
	// and example.com, trusted by Provider.Client).
	Certificate *tls.Certificate
	// ClientID and ClientSecret are the one registered client's credentials
	// (client_secret_basic); defaults DefaultClientID and DefaultClientSecret.
	ClientID, ClientSecret string
	// AccessTTL and IDTokenTTL are the tokens' lifetimes; default 1h each. SetAccessTTL
	// changes the first later.
	AccessTTL, IDTokenTTL time.Duration
	// Users can log in; the first is the one logged in without a form (default: Alice).
	Users []User
	// FormLogin makes the login page a form (see Provider.FormLogin).
	FormLogin bool
}

// Provider is a running OpenID provider. Its counters and switches may be read and set while
// it serves.
type Provider struct {
	// Issuer is the issuer URL.
	Issuer string
	// ClientID and ClientSecret are the registered client's credentials.
	ClientID, ClientSecret string

	// CodeGrants, RefreshGrants, EndSessions and DiscoveryHits count authorization-code
	// grants, refresh grants, end_session requests and discovery document fetches.
	CodeGrants, RefreshGrants, EndSessions, DiscoveryHits atomic.Int64
	// FailTokens makes the token endpoint answer 503 (a provider outage).
	FailTokens atomic.Bool
	// FormLogin makes the login page a form the user submits (choosing a user by login name;
	// the button has id "signin"), so the redirect back to the app starts from the
	// provider's page as at a real provider, instead of an immediate redirect that logs in
	// the current user.
	FormLogin atomic.Bool

	srv   *httptest.Server
	op    *op.Provider
	store *opStore
	// user is who a login without a form logs in; nil makes it deny the login.
	user atomic.Pointer[User]
}

// NewProvider starts a provider for the test; it stops when the test ends.
func NewProvider(t testing.TB, opts Options) *Provider {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{ClientID: opts.ClientID, ClientSecret: opts.ClientSecret}
	if p.ClientID == "" {
		p.ClientID = DefaultClientID
	}
	if p.ClientSecret == "" {
		p.ClientSecret = DefaultClientSecret
	}
	accessTTL, idTTL := opts.AccessTTL, opts.IDTokenTTL
	if accessTTL == 0 {
		accessTTL = time.Hour
	}
	if idTTL == 0 {
		idTTL = time.Hour
	}
	users := opts.Users
	if len(users) == 0 {
		users = []User{Alice}
	}
	p.store = &opStore{
		p:        p,
		key:      key,
		kid:      "k1",
		users:    map[string]*User{},
		requests: map[string]*authRequest{},
		codes:    map[string]string{},
		tokens:   map[string]*accessToken{},
		refresh:  map[string]*refreshToken{},
		client:   &client{id: p.ClientID, idTTL: idTTL},
	}
	p.store.accessTTL.Store(int64(accessTTL))
	for _, u := range users {
		p.AddUser(u)
	}
	first := users[0]
	p.user.Store(&first)
	p.FormLogin.Store(opts.FormLogin)

	p.srv = httptest.NewUnstartedServer(nil)
	if opts.Addr != "" {
		ln, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			t.Fatalf("oidctest: listen %s: %v", opts.Addr, err)
		}
		p.srv.Listener.Close()
		p.srv.Listener = ln
	}
	if opts.Certificate != nil {
		p.srv.TLS = &tls.Config{Certificates: []tls.Certificate{*opts.Certificate}}
	}
	p.Issuer = strings.TrimSuffix(opts.Issuer, "/")
	if p.Issuer == "" {
		p.Issuer = "https://" + p.srv.Listener.Addr().String()
	}
	var cryptoKey [32]byte
	rand.Read(cryptoKey[:])
	p.op, err = op.NewProvider(&op.Config{
		CryptoKey:                cryptoKey,
		DefaultLogoutRedirectURI: "/logged-out",
		CodeMethodS256:           true,
		GrantTypeRefreshToken:    true,
	}, p.store, op.StaticIssuer(p.Issuer))
	if err != nil {
		p.srv.Listener.Close()
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", p.login)
	mux.HandleFunc("/logged-out", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "logged out at the provider")
	})
	mux.Handle("/", p.op)
	p.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			p.DiscoveryHits.Add(1)
		case "/oauth/token":
			if p.FailTokens.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			r.ParseForm()
			switch r.PostForm.Get("grant_type") {
			case "authorization_code":
				p.CodeGrants.Add(1)
			case "refresh_token":
				p.RefreshGrants.Add(1)
			}
		case "/end_session":
			p.EndSessions.Add(1)
		}
		mux.ServeHTTP(w, r)
	})
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	return p
}

// Addr is the provider's listening address (host:port).
func (p *Provider) Addr() string { return p.srv.Listener.Addr().String() }

// Client is an HTTP client that trusts httptest's certificate (the provider's unless
// Options.Certificate replaced it).
func (p *Provider) Client() *http.Client { return p.srv.Client() }

// Close stops the provider (its address then refuses connections).
func (p *Provider) Close() { p.srv.Close() }

// AllowRedirect registers a callback URL (redirect_uri) and a post-logout URL ("" for none)
// for the client. The provider refuses logins and logouts to URLs not registered.
func (p *Provider) AllowRedirect(callback, postLogout string) {
	c := p.store.client
	c.mu.Lock()
	defer c.mu.Unlock()
	c.redirects = append(c.redirects, callback)
	if postLogout != "" {
		c.postLogout = append(c.postLogout, postLogout)
	}
}

// AddUser adds (or replaces, by subject) a user who can log in with the form.
func (p *Provider) AddUser(u User) {
	s := p.store
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.Subject] = &u
}

// SetUser makes u the user a login without a form logs in (adding it), and the form's
// default; nil makes such logins fail with access_denied.
func (p *Provider) SetUser(u *User) {
	if u == nil {
		p.user.Store(nil)
		return
	}
	p.AddUser(*u)
	cp := *u
	p.user.Store(&cp)
}

// SetAccessTTL sets the lifetime of the access tokens issued from now on.
func (p *Provider) SetAccessTTL(d time.Duration) { p.store.accessTTL.Store(int64(d)) }

// RevokeAll makes every refresh token invalid: refreshing then fails with invalid_grant.
func (p *Provider) RevokeAll() {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	clear(p.store.refresh)
}

// userByLogin finds a user by login name.
func (p *Provider) userByLogin(login string) *User {
	s := p.store
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.login() == login {
			cp := *u
			return &cp
		}
	}
	return nil
}

// login is the provider's login page. Without FormLogin it completes the auth request as the
// current user at once, or denies it; with FormLogin a GET shows a form and its POST logs in
// the user it names.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	u := p.user.Load()
	if p.FormLogin.Load() {
		if r.Method != http.MethodPost {
			p.loginForm(w, id, u, "")
			return
		}
		r.ParseForm()
		login := r.PostForm.Get("username")
		if login != "" {
			u = p.userByLogin(login)
		}
		if u == nil {
			w.WriteHeader(http.StatusUnauthorized)
			p.loginForm(w, id, nil, "unknown user "+login)
			return
		}
	}
	s := p.store
	s.mu.Lock()
	req, ok := s.requests[id]
	if ok && u != nil {
		req.sub, req.done, req.authTime = u.Subject, true, time.Now()
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
	http.Redirect(w, r, p.op.AuthorizationEndpoint().Absolute(p.Issuer)+"/callback?id="+url.QueryEscape(id), http.StatusFound)
}

// loginForm writes the login form, with the current user's login name filled in.
func (p *Provider) loginForm(w http.ResponseWriter, id string, u *User, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	name := ""
	if u != nil {
		name = u.login()
	}
	fmt.Fprintf(w, `<!DOCTYPE html><html><body><p id="msg">%s</p><form method="post" action="/login?authRequestID=%s">`+
		`<input id="username" name="username" value="%s"><button id="signin" type="submit">Sign in</button></form></body></html>`,
		html.EscapeString(msg), html.EscapeString(url.QueryEscape(id)), html.EscapeString(name))
}

// LoginForm posts the login form of the page at loginURL (the provider's /login?authRequestID=...)
// as user login, with c (which keeps no provider cookies, so any client will do), and
// returns the provider's answer without following it.
func (p *Provider) LoginForm(c *http.Client, loginURL, login string) (*http.Response, error) {
	u, err := url.Parse(loginURL)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, u.String(), strings.NewReader(url.Values{"username": {login}}.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return nc.Do(req)
}
