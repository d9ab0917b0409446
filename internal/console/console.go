// Package console is Apoxy's web console: server-rendered pages, served by the apoxy binary at
// /console/, that show a project's edge (Gateways, routes with the explain view, backends,
// policies, functions, DNS, tunnels), live per-route charts and the access log, and edit any
// object as YAML with the server's validation errors shown at their field.
//
// The console is an API client like the CLI: a signed-in session holds the key its user gave
// (or, under `apoxy dev`, the admin key, through the sign-in link dev prints) and every page is
// read and every change made through the project's API with that key, so the console has no
// privilege of its own. Sessions live in memory; their cookie is HttpOnly and SameSite=Strict,
// every state-changing request also carries the session's CSRF token and a same-origin Origin,
// and every page is served with a Content-Security-Policy that allows only the console's own
// script and style (no inline code, no other origin).
package console

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Prefix is where the console is served.
const Prefix = "/console/"

const (
	cookieName = "apoxy_console"
	// sessionIdle ends a session nobody used for this long.
	sessionIdle = 12 * time.Hour
	// maxSessions bounds the sessions kept; the least recently used goes first.
	maxSessions = 1024
)

//go:embed templates/*.html static/*
var assets embed.FS

// Options configure the console.
type Options struct {
	// API returns the API server's base URL (https://host:port) and its serving certificate's
	// CA (asked when a session starts: the API may start after the console is built).
	API func() (url string, ca []byte)
	// DevSignIn, if set, enables the sign-in link (SignInPath) that `apoxy dev` prints: it
	// signs in with the key this returns (the admin key). Never set under `apoxy server`.
	DevSignIn func() string
	// ProjectOfKey says which project a project key is for, so that signing in with one needs
	// only the key.
	ProjectOfKey func(key string) (string, bool)
	Logger       *slog.Logger
}

// Console serves the web console. Create it with New; it is an http.Handler for Prefix.
type Console struct {
	opts    Options
	pages   map[string]*template.Template
	static  http.Handler
	devCode string

	mu       sync.Mutex
	sessions map[string]*session
}

// session is one signed-in browser.
type session struct {
	id    string
	token string
	// admin sessions see every project; a project key's session only Project.
	admin   bool
	project string
	csrf    string
	seen    time.Time

	mu sync.Mutex
	// tops are the last per-route snapshot each chart stream read (rates are differences).
	tops map[string]*topState
	api  *apiClient
}

// Admin says whether the session holds the admin key (for the pages).
func (s *session) Admin() bool { return s.admin }

// New parses the templates and readies the console.
func New(opts Options) (*Console, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	c := &Console{opts: opts, pages: pages, sessions: map[string]*session{},
		static: http.StripPrefix(Prefix+"static/", http.FileServer(http.FS(static)))}
	if opts.DevSignIn != nil {
		c.devCode = randomID()
	}
	return c, nil
}

// SignInPath is the path that signs a browser in with the dev key ("" when the console has
// none): `apoxy dev` prints it after its admin listener's address.
func (c *Console) SignInPath() string {
	if c.devCode == "" {
		return ""
	}
	return Prefix + "signin?code=" + c.devCode
}

func randomID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (c *Console) client(token string) *apiClient {
	u, ca := c.opts.API()
	return newAPIClient(u, ca, token, c.opts.ProjectOfKey)
}

// ServeHTTP serves the console below Prefix.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: with no-referrer, browsers send "Origin: null" on the
	// console's own form posts, which the CSRF check then cannot tell from a foreign one.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	rest := strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(Prefix, "/"))
	switch {
	case strings.HasPrefix(rest, "/static/"):
		h.Set("Cache-Control", "no-cache")
		c.static.ServeHTTP(w, r)
		return
	case rest == "/signin":
		c.signIn(w, r)
		return
	}
	s := c.session(r)
	if s == nil {
		if r.Method == http.MethodGet && !strings.Contains(rest, "/data/") {
			http.Redirect(w, r, Prefix+"signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		http.Error(w, "not signed in", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := checkCSRF(r, s); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
	}
	h.Set("Cache-Control", "no-store")
	c.route(w, r, s, rest)
}

// checkCSRF accepts a state-changing request only from the console's own pages: a same-origin
// Origin (or none, from old browsers, with a Referer of this host) and the session's token.
func checkCSRF(r *http.Request, s *session) error {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return errors.New("cross-origin request refused")
		}
	} else if ref, err := url.Parse(r.Referer()); r.Referer() == "" || err != nil || ref.Host != r.Host {
		return errors.New("request without a same-origin Origin or Referer refused")
	}
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" {
		tok = r.PostFormValue("csrf")
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(s.csrf)) != 1 {
		return errors.New("missing or wrong CSRF token: reload the page")
	}
	return nil
}

// session returns the request's live session, or nil.
func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[ck.Value]
	if s == nil {
		return nil
	}
	if time.Since(s.seen) > sessionIdle {
		delete(c.sessions, s.id)
		return nil
	}
	s.seen = time.Now()
	return s
}

// startSession stores a session for token and sets its cookie.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, token string, admin bool, project string) {
	s := &session{id: randomID(), token: token, admin: admin, project: project, csrf: randomID(), seen: time.Now(), tops: map[string]*topState{}}
	s.api = c.client(token)
	c.mu.Lock()
	for id, old := range c.sessions {
		if time.Since(old.seen) > sessionIdle {
			delete(c.sessions, id)
		}
	}
	if len(c.sessions) >= maxSessions {
		var oldest *session
		for _, o := range c.sessions {
			if oldest == nil || o.seen.Before(oldest.seen) {
				oldest = o
			}
		}
		delete(c.sessions, oldest.id)
	}
	c.sessions[s.id] = s
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.id, Path: Prefix, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: int(sessionIdle / time.Second)})
}

func (c *Console) endSession(w http.ResponseWriter, s *session) {
	c.mu.Lock()
	delete(c.sessions, s.id)
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// signIn serves the sign-in form, checks a key given to it, and takes the dev link's code.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	next := r.FormValue("next")
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") {
		next = Prefix
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Query().Has("code"):
		code := r.URL.Query().Get("code")
		if c.devCode == "" || subtle.ConstantTimeCompare([]byte(code), []byte(c.devCode)) != 1 {
			c.render(w, r, http.StatusUnauthorized, "signin", nil, map[string]any{"Error": "This sign-in link is not valid (it is valid while the `apoxy dev` that printed it runs). Sign in with a key instead.", "Next": next})
			return
		}
		c.startSession(w, r, c.opts.DevSignIn(), true, "")
		http.Redirect(w, r, next, http.StatusSeeOther)
	case r.Method == http.MethodPost:
		// The form is same-origin by SameSite; a login CSRF would only sign the victim in
		// with the attacker's key, which the Origin check refuses.
		if o := r.Header.Get("Origin"); o != "" {
			if u, err := url.Parse(o); err != nil || u.Host != r.Host {
				http.Error(w, "cross-origin sign-in refused", http.StatusForbidden)
				return
			}
		}
		key := strings.TrimSpace(r.PostFormValue("key"))
		admin, project, err := c.client(key).whoAmI(r.Context())
		if err != nil {
			c.render(w, r, http.StatusUnauthorized, "signin", nil, map[string]any{"Error": err.Error(), "Next": next})
			return
		}
		c.startSession(w, r, key, admin, project)
		http.Redirect(w, r, next, http.StatusSeeOther)
	default:
		c.render(w, r, http.StatusOK, "signin", nil, map[string]any{"Next": next, "Dev": c.devCode != ""})
	}
}
