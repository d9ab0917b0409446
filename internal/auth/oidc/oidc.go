// Package oidc is the OpenID Connect relying party the gateway runs for an AuthPolicy oidc
// block (design §2.4): it logs browsers in with the authorization code flow, keeps the
// session in encrypted cookies, refreshes tokens, and logs out.
//
// The flow, for one request handed to RP.Serve (or RP.Handle):
//
//   - The callback path (RedirectURL's) and the logout path are answered wherever the stage
//     is mounted: the caller runs the RP before route matching on every host the policy
//     covers, so a route that happens to match the callback path cannot break the login.
//   - A request with a valid session passes: Serve returns the Session (ID token claims,
//     access token, ID token) and handled=false, and the caller forwards the request. The
//     RP's cookies are removed from the request first, so the upstream never sees them.
//   - Tokens about to expire (within RefreshMargin) are refreshed with the refresh token
//     when RefreshTokens is set; the re-sealed cookies are added to w.Header() as Set-Cookie
//     before Serve returns, so the caller must send the headers already in w with whatever
//     response it writes (the proxy's response writer does). The same happens when the
//     session was sealed under an older key of the ring: it is re-sealed under the newest.
//   - Without a valid session the request is answered according to UnauthenticatedAction:
//     a 302 to the provider's authorization endpoint, or 401.
//
// Logins use PKCE S256 always, a random "state" (CSRF) and "nonce" (checked in the ID
// token), bound to a 10-minute state cookie named after the state (so logins in several tabs
// do not clobber each other) that also holds the PKCE verifier and the URL to return to. The
// return target is the path and query of the request that started the login, accepted only
// when no browser can read it as another origin ("//evil.com", "/\evil.com", absolute URLs
// are replaced with "/"): there is no open redirect.
//
// Cookies are sealed with AES-256-GCM under the KeyRing (keys derived with HKDF), bound to
// their name prefix and purpose. A session cookie carries the ID token, the access and
// refresh tokens, their expiry and the login time; a large one is split into numbered
// chunks (prefix_0, prefix_1, ...). There is no server-side state: any replica with the
// same KeyRing honours any other's sessions. A cookie that does not open, or is malformed,
// expired or past the absolute timeout, is no session (never an error page).
//
// The package knows neither the API types nor the proxy. A filter stage uses it like this:
//
//  1. build a Config from ir.OIDCAuth: the resolved client secret, SessionKeys as the
//     KeyRing (each at least MinKeySize bytes), an HTTPClient that dials the policy's
//     Backend when it has one, the gateway's error writer as Errors; New it once per
//     configuration and Close the old RP when the configuration changes;
//  2. strip the claimToHeaders and forwardIDToken headers from the client's request;
//  3. with passThroughBearer, let a request whose bearer token the policy's jwt block
//     verifies skip the RP (an invalid bearer gets the jwt block's 401);
//  4. call Handle (with the listener's scheme) before route matching; when Handled, stop
//     (Outcome goes to the access log);
//  5. otherwise forward with the Session: Claims as the identity (jwt.LookupClaim,
//     jwt.HeaderValue for claimToHeaders), "Authorization: Bearer " + AccessToken with
//     forwardAccessToken, IDToken in the forwardIDToken header; keep the Set-Cookie
//     headers already in w.
package oidc

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"apoxy.dev/apoxy/internal/auth/jwt"
)

// RP is an OpenID Connect relying party for one oidc block. It is safe for concurrent use.
type RP struct {
	cfg     checked
	jar     cookieJar
	client  *http.Client
	timeout time.Duration
	now     func() time.Time

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc

	disc discovery

	refreshMu sync.Mutex
	refreshes map[string]*refreshCall

	claims claimsCache
}

// claimsCacheBytes bounds the ID tokens whose decoded claims are kept (keys and values
// together are a few times this): past it the cache starts afresh.
const claimsCacheBytes = 4 << 20

// claimsCache keeps the decoded claims of the ID tokens of recent sessions: decoding the
// JSON is the larger part of a session check, and a user sends the same ID token with
// every request until it is refreshed.
type claimsCache struct {
	mu    sync.Mutex
	m     map[string]map[string]any
	bytes int
}

// get returns the claims of an ID token that was sealed in a cookie the RP opened.
func (c *claimsCache) get(idToken string) (map[string]any, error) {
	c.mu.Lock()
	m, ok := c.m[idToken]
	c.mu.Unlock()
	if ok {
		return m, nil
	}
	m, err := payloadClaims(idToken)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || c.bytes+len(idToken) > claimsCacheBytes {
		c.m, c.bytes = map[string]map[string]any{}, 0
	}
	if _, dup := c.m[idToken]; !dup {
		c.m[idToken] = m
		c.bytes += len(idToken)
	}
	c.mu.Unlock()
	return m, nil
}

// New checks cfg and returns an RP. Nothing is fetched yet: the provider is discovered on
// first use (a login, callback, refresh or logout), and requests with a valid session never
// need it.
func New(cfg Config) (*RP, error) {
	ck, err := checkConfig(cfg)
	if err != nil {
		return nil, err
	}
	s, err := newSealer(cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &RP{
		cfg: *ck,
		jar: cookieJar{
			prefix:   ck.CookieNamePrefix,
			domain:   ck.CookieDomain,
			secure:   ck.CookieSecure,
			sameSite: ck.sameSite,
			sealer:   s,
		},
		client:    ck.HTTPClient,
		timeout:   ck.Timeout,
		now:       ck.Now,
		ctx:       ctx,
		cancel:    cancel,
		refreshes: map[string]*refreshCall{},
	}, nil
}

// CookieNamePrefix returns the prefix of the RP's cookie names (the configured one or the
// default).
func (rp *RP) CookieNamePrefix() string { return rp.jar.prefix }

// Health returns why the provider cannot be used (discovery or its JWKS failed the last
// time they were tried), nil when it can or was not needed yet.
func (rp *RP) Health() error {
	d := &rp.disc
	d.mu.Lock()
	ep, err := d.ep, d.lastErr
	d.mu.Unlock()
	if err != nil {
		return err
	}
	if ep != nil {
		return ep.keys.Health()
	}
	return nil
}

// Close stops the RP's calls to the provider and releases its key source. Requests served
// afterwards can still use existing sessions, but not log in. It is idempotent.
func (rp *RP) Close() {
	rp.cancel()
	d := &rp.disc
	d.mu.Lock()
	ep := d.ep
	d.mu.Unlock()
	if ep != nil {
		ep.keys.Close()
	}
}

// Session is an authenticated request's identity.
type Session struct {
	// Subject is the ID token's "sub".
	Subject string
	// Claims are the ID token's claims, numbers as json.Number (as the jwt package gives
	// them, so jwt.LookupClaim and jwt.HeaderValue apply). Like a jwt.Token's, the map is
	// shared with other requests of the session and must not be modified.
	Claims map[string]any
	// IDToken and AccessToken are the tokens, for forwardIDToken and forwardAccessToken.
	IDToken     string
	AccessToken string
	// Expiry is when the tokens expire; Start is when the user logged in.
	Expiry time.Time
	Start  time.Time
	// Refreshed: the tokens were refreshed for this request, and the new cookies were added
	// to the response's headers.
	Refreshed bool
}

// Outcome says what the RP did with a request, for the access log and metrics.
type Outcome string

// The outcomes of Handle.
const (
	OutcomeSession     Outcome = "session"      // a valid session: forward
	OutcomeRefreshed   Outcome = "refreshed"    // a valid session after a refresh: forward
	OutcomeLogin       Outcome = "login"        // redirected to the provider
	OutcomeDenied      Outcome = "denied"       // no valid session: 401
	OutcomeCallback    Outcome = "callback"     // login completed: cookies set, back to the original URL
	OutcomeBadCallback Outcome = "bad_callback" // callback refused (state, code, ID token, provider error)
	OutcomeLogout      Outcome = "logout"       // cookies cleared, redirected
	OutcomeUnavailable Outcome = "unavailable"  // the provider could not be reached: 502/503
)

// Result is what Handle did.
type Result struct {
	// Session is the identity of a request to forward; nil when Handled.
	Session *Session
	// Handled: the RP wrote the response and the caller stops.
	Handled bool
	Outcome Outcome
}

// Serve is Handle with the scheme taken from the request (see Handle).
func (rp *RP) Serve(w http.ResponseWriter, r *http.Request) (s *Session, handled bool) {
	res := rp.Handle(w, r, "")
	return res.Session, res.Handled
}

// Handle runs the RP for one request. scheme is the listener's ("http" or "https"), used
// to build absolute URLs from RedirectURL and PostLogoutRedirectURL paths; "" takes
// r.URL.Scheme, else "https" when r.TLS is set, else "http".
//
// When the result is not Handled, Session is set, the RP's cookies have been removed from
// r's Cookie headers, and w's headers may hold Set-Cookie lines the caller must send with
// its response.
func (rp *RP) Handle(w http.ResponseWriter, r *http.Request, scheme string) Result {
	if scheme == "" {
		switch {
		case r.URL.Scheme != "":
			scheme = r.URL.Scheme
		case r.TLS != nil:
			scheme = "https"
		default:
			scheme = "http"
		}
	}
	switch p := r.URL.Path; {
	case p == rp.cfg.callbackPath && (rp.cfg.callbackURL == nil || sameHost(r.Host, rp.cfg.callbackURL.Host)):
		return rp.callback(w, r, scheme)
	case p == rp.cfg.LogoutPath:
		return rp.logout(w, r, scheme)
	}
	s, out := rp.session(w, r)
	if s != nil {
		rp.stripCookies(r)
		return Result{Session: s, Outcome: out}
	}
	if rp.wantsRedirect(r) {
		return rp.login(w, r, scheme)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("WWW-Authenticate", "Bearer")
	rp.cfg.Errors(w, "authentication required", http.StatusUnauthorized)
	return Result{Handled: true, Outcome: OutcomeDenied}
}

// wantsRedirect applies UnauthenticatedAction. Auto redirects a navigation: GET or HEAD, an
// Accept that takes text/html, not marked as a script's request (X-Requested-With, or a
// Sec-Fetch-Mode other than navigate).
func (rp *RP) wantsRedirect(r *http.Request) bool {
	switch rp.cfg.UnauthenticatedAction {
	case ActionRedirect:
		return true
	case ActionDeny:
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if strings.EqualFold(r.Header.Get("X-Requested-With"), "XMLHttpRequest") {
		return false
	}
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" && m != "navigate" {
		return false
	}
	return acceptsHTML(r.Header.Values("Accept"))
}

// acceptsHTML reports whether an Accept header lists text/html with a non-zero quality.
func acceptsHTML(values []string) bool {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mt != "text/html" {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// session returns the request's valid session, refreshing it when due; nil when there is
// none.
func (rp *RP) session(w http.ResponseWriter, r *http.Request) (*Session, Outcome) {
	d, key, ok := rp.readSession(r)
	if !ok {
		return nil, OutcomeDenied
	}
	now := rp.now()
	end := d.Start.Add(rp.cfg.AbsoluteTimeout)
	if !now.Before(end) {
		return nil, OutcomeDenied
	}
	reseal, out := key != 0, OutcomeSession
	if now.Add(RefreshMargin).After(d.Expiry) && rp.cfg.RefreshTokens && d.RefreshToken != "" {
		nd, err := rp.refresh(r.Context(), d)
		switch {
		case err == nil:
			d, reseal, out = nd, true, OutcomeRefreshed
		case rejected(err) || !now.Before(d.Expiry):
			rp.cfg.Log.V(1).Info("oidc: refresh failed; login needed", "error", err.Error())
			return nil, OutcomeDenied
		default: // a transient failure while the tokens still work: use them, retry later
			rp.cfg.Log.Info("oidc: refresh failed; tokens still valid", "error", err.Error())
		}
	}
	if !now.Before(d.Expiry) {
		return nil, OutcomeDenied
	}
	claims, err := rp.claims.get(d.IDToken)
	if err != nil {
		return nil, OutcomeDenied
	}
	if reseal {
		if err := rp.setSession(w, &d, now); err != nil {
			rp.cfg.Log.Error(err, "oidc: re-sealing the session")
			if out == OutcomeRefreshed {
				return nil, OutcomeDenied // the browser would keep the spent refresh token
			}
		}
	}
	sub, _ := claims["sub"].(string)
	return &Session{
		Subject:     sub,
		Claims:      claims,
		IDToken:     d.IDToken,
		AccessToken: d.AccessToken,
		Expiry:      d.Expiry,
		Start:       d.Start,
		Refreshed:   out == OutcomeRefreshed,
	}, out
}

// readSession decodes the request's session cookies without checking expiry.
func (rp *RP) readSession(r *http.Request) (SessionData, int, bool) {
	for _, vals := range rp.jar.sessionValues(r) {
		if d, key, err := rp.jar.DecodeSession(vals); err == nil {
			return d, key, true
		}
	}
	return SessionData{}, 0, false
}

// DecodeSession opens a session from the values of its cookies (values[i] is chunk i's),
// as the RP does for each request: see the package's cookie format. Neither the expiry nor
// the absolute timeout is checked.
func (rp *RP) DecodeSession(values []string) (SessionData, error) {
	d, _, err := rp.jar.DecodeSession(values)
	return d, err
}

// setSession seals d into cookies on w. They live until the absolute timeout, or until the
// tokens expire when they cannot be refreshed.
func (rp *RP) setSession(w http.ResponseWriter, d *SessionData, now time.Time) error {
	vals, err := rp.jar.encodeSession(d)
	if err != nil {
		return err
	}
	until := d.Start.Add(rp.cfg.AbsoluteTimeout)
	if !rp.cfg.RefreshTokens || d.RefreshToken == "" {
		until = d.Expiry
	}
	maxAge := max(int(until.Sub(now)/time.Second), 1)
	for _, c := range rp.jar.sessionCookies(vals, maxAge) {
		http.SetCookie(w, c)
	}
	return nil
}

// payloadClaims decodes an ID token's payload. The token was verified before it was sealed
// into the cookie, which authenticates it now.
func payloadClaims(tok string) (map[string]any, error) {
	_, rest, ok := strings.Cut(tok, ".")
	if !ok {
		return nil, errBadSession
	}
	payload, _, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, errBadSession
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, errBadSession
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, errBadSession
	}
	return m, nil
}

// stripCookies removes the RP's cookies from the request's Cookie headers, keeping the
// others byte for byte.
func (rp *RP) stripCookies(r *http.Request) {
	lines := r.Header.Values("Cookie")
	if len(lines) == 0 {
		return
	}
	var out []string
	changed := false
	for _, line := range lines {
		parts := strings.Split(line, ";")
		kept := parts[:0]
		for _, p := range parts {
			name, _, _ := strings.Cut(strings.TrimSpace(p), "=")
			if rp.jar.isOurs(name) {
				changed = true
				continue
			}
			kept = append(kept, p)
		}
		if len(kept) > 0 {
			out = append(out, strings.TrimSpace(strings.Join(kept, ";")))
		}
	}
	if !changed {
		return
	}
	if len(out) == 0 {
		r.Header.Del("Cookie")
		return
	}
	r.Header["Cookie"] = out
}

// login redirects to the provider's authorization endpoint with a new login state.
func (rp *RP) login(w http.ResponseWriter, r *http.Request, scheme string) Result {
	ep, err := rp.provider(r.Context())
	if err != nil {
		return rp.unavailable(w, "discovery", err)
	}
	st := newLoginState(rp.now(), r.Host, safeReturnPath(r.URL.RequestURI()))
	name, value := rp.jar.encodeState(st)
	http.SetCookie(w, rp.stateCookie(name, value, int(StateTTL/time.Second)))

	u, err := url.Parse(ep.authorization)
	if err != nil {
		return rp.unavailable(w, "authorization endpoint", err)
	}
	q := u.Query()
	q.Set("response_type", "code")
	q.Set("client_id", rp.cfg.ClientID)
	q.Set("redirect_uri", rp.redirectURI(r, scheme))
	q.Set("scope", rp.cfg.scopes)
	q.Set("state", st.State)
	q.Set("nonce", st.Nonce)
	q.Set("code_challenge", st.challenge())
	q.Set("code_challenge_method", "S256")
	u.RawQuery = q.Encode()
	redirect(w, u.String())
	return Result{Handled: true, Outcome: OutcomeLogin}
}

// stateCookie is a login state cookie: sent only to the callback path (but for a "__Host-"
// prefix), and SameSite=Lax
// even when the session's are Strict, because the callback is a navigation from the
// provider's site (None stays None).
func (rp *RP) stateCookie(name, value string, maxAge int) *http.Cookie {
	c := rp.jar.cookie(name, value, maxAge)
	if !strings.HasPrefix(rp.jar.prefix, "__Host-") { // which browsers keep only for Path=/
		c.Path = rp.cfg.callbackPath
	}
	if c.SameSite != http.SameSiteNoneMode {
		c.SameSite = http.SameSiteLaxMode
	}
	return c
}

// redirectURI is the callback URL for a request: RedirectURL when absolute, else its path on
// the request's scheme and host.
func (rp *RP) redirectURI(r *http.Request, scheme string) string {
	if rp.cfg.callbackURL != nil {
		return rp.cfg.callbackURL.String()
	}
	return scheme + "://" + r.Host + rp.cfg.callbackPath
}

// callback completes a login: it checks the state against its cookie, redeems the code,
// verifies the ID token, sets the session cookies and sends the browser back.
func (rp *RP) callback(w http.ResponseWriter, r *http.Request, scheme string) Result {
	w.Header().Set("Cache-Control", "no-store")
	bad := func(code int, msg, why string) Result {
		rp.cfg.Log.V(1).Info("oidc: callback refused", "reason", why)
		rp.cfg.Errors(w, msg, code)
		return Result{Handled: true, Outcome: OutcomeBadCallback}
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		return bad(http.StatusMethodNotAllowed, "method not allowed", "method "+r.Method)
	}
	q := r.URL.Query()
	state := q.Get("state")
	name := rp.jar.stateCookieName(state)
	if name == "" {
		return bad(http.StatusBadRequest, "invalid login state", "missing or malformed state")
	}
	now := rp.now()
	var st *loginState
	for _, c := range r.CookiesNamed(name) {
		if s, ok := rp.jar.decodeState(name, c.Value, state, now); ok {
			st = s
			break
		}
	}
	if st == nil {
		return bad(http.StatusBadRequest, "invalid login state", "no state cookie matches the state")
	}
	http.SetCookie(w, rp.stateCookie(name, "", -1)) // one use only

	if e := q.Get("error"); e != "" {
		return bad(http.StatusUnauthorized, "login failed", "provider error "+strconv.Quote(clipString(e, 64)))
	}
	code := q.Get("code")
	if code == "" {
		return bad(http.StatusBadRequest, "invalid callback", "no code")
	}
	ep, err := rp.provider(r.Context())
	if err != nil {
		return rp.unavailable(w, "discovery", err)
	}
	tr, err := rp.exchangeCode(ep, code, rp.redirectURI(r, scheme), st.Verifier)
	if err != nil {
		if rejected(err) {
			return bad(http.StatusBadRequest, "login failed", err.Error())
		}
		return rp.unavailable(w, "code exchange", err)
	}
	if tr.IDToken == "" {
		return rp.unavailable(w, "code exchange", errors.New("no id_token in the token response"))
	}
	tok, err := rp.verifyIDToken(r.Context(), ep, tr.IDToken, st.Nonce, "")
	if err != nil {
		if jwt.ReasonOf(err) == jwt.ReasonJWKSUnavailable {
			return rp.unavailable(w, "ID token keys", err)
		}
		return bad(http.StatusUnauthorized, "login failed", err.Error())
	}
	d := SessionData{
		Start:       now,
		Expiry:      rp.expiry(now, now, tr, tok.Expiry),
		IDToken:     tr.IDToken,
		AccessToken: tr.AccessToken,
	}
	if rp.cfg.RefreshTokens {
		d.RefreshToken = tr.RefreshToken
	}
	if err := rp.setSession(w, &d, now); err != nil {
		rp.cfg.Log.Error(err, "oidc: sealing the session")
		rp.cfg.Errors(w, "session too large", http.StatusInternalServerError)
		return Result{Handled: true, Outcome: OutcomeBadCallback}
	}

	target := safeReturnPath(st.Return)
	switch {
	case sameHost(st.Host, r.Host):
	case rp.crossHostReturn(st.Host):
		target = scheme + "://" + st.Host + target
	default:
		target = "/"
	}
	if rp.jar.sameSite == http.SameSiteStrictMode {
		// A redirect chain that began on the provider's site is cross-site: the browser
		// would not send the Strict cookies just set. A page of this site navigating on is
		// same-site, so it does.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, `<!DOCTYPE html><html><head><meta http-equiv="refresh" content="0;url=%s"></head><body><a href="%s">Continue</a></body></html>`,
			html.EscapeString(target), html.EscapeString(target))
	} else {
		redirect(w, target)
	}
	return Result{Handled: true, Outcome: OutcomeCallback}
}

// crossHostReturn reports whether a login that started on host may return there from a
// callback on another host (an absolute RedirectURL): only when the cookies are shared with
// a domain that covers it, the only case where the session reaches that host.
func (rp *RP) crossHostReturn(host string) bool {
	d := rp.cfg.CookieDomain
	if rp.cfg.callbackURL == nil || d == "" {
		return false
	}
	h := host
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.ToLower(h)
	d = strings.ToLower(d)
	return h == d || strings.HasSuffix(h, "."+d)
}

// verifyIDToken verifies an ID token (signature, iss, aud, exp, nbf, iat through the jwt
// package) and the OIDC rules on top: an "exp" and a "sub" present, "azp" (when present)
// the client, "nonce" equal to nonce when one is expected, and "sub" equal to sub when
// given (a refreshed ID token must be the same user's).
func (rp *RP) verifyIDToken(ctx context.Context, ep *endpoints, raw, nonce, sub string) (*jwt.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, rp.timeout)
	defer cancel()
	tok, err := ep.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	switch {
	case tok.Expiry.IsZero():
		return nil, errors.New("ID token without exp")
	case tok.Subject == "":
		return nil, errors.New("ID token without sub")
	case sub != "" && tok.Subject != sub:
		return nil, errors.New("refreshed ID token is for another subject")
	}
	if azp, ok := tok.Claims["azp"]; ok && azp != rp.cfg.ClientID {
		return nil, errors.New("ID token azp is not the client")
	}
	if nonce != "" {
		got, _ := tok.Claims["nonce"].(string)
		if subtle.ConstantTimeCompare([]byte(got), []byte(nonce)) != 1 {
			return nil, errors.New("ID token nonce does not match the login's")
		}
	}
	return tok, nil
}

// expiry is when tokens from tr, obtained at now for a session started at start, expire:
// the access token's expires_in, else the ID token's exp (idExp, zero when none came), else
// DefaultTokenLifetime; never past the absolute timeout.
func (rp *RP) expiry(start, now time.Time, tr *tokenResponse, idExp time.Time) time.Time {
	var e time.Time
	switch {
	case tr.expiresIn() > 0:
		e = now.Add(tr.expiresIn())
	case !idExp.IsZero():
		e = idExp
	default:
		e = now.Add(DefaultTokenLifetime)
	}
	if end := start.Add(rp.cfg.AbsoluteTimeout); e.After(end) {
		e = end
	}
	if e.Before(start) {
		e = start
	}
	return e
}

// refreshCall is one refresh that concurrent requests holding the same refresh token share.
// It is kept for refreshReuse after it ends, so requests that left the browser with the old
// cookie before the new one arrived get the same tokens instead of spending the (possibly
// rotated, now invalid) refresh token again.
type refreshCall struct {
	done     chan struct{}
	d        SessionData
	err      error
	finished time.Time
}

const (
	refreshReuse    = 30 * time.Second
	maxRefreshCalls = 4096
)

// refresh renews d's tokens with its refresh token.
func (rp *RP) refresh(ctx context.Context, d SessionData) (SessionData, error) {
	key := d.RefreshToken
	now := rp.now()
	rp.refreshMu.Lock()
	c := rp.refreshes[key]
	if c != nil && !c.finished.IsZero() && now.Sub(c.finished) > refreshReuse {
		c = nil
	}
	if c == nil {
		if len(rp.refreshes) >= maxRefreshCalls/2 {
			for k, old := range rp.refreshes {
				if !old.finished.IsZero() && now.Sub(old.finished) > refreshReuse {
					delete(rp.refreshes, k)
				}
			}
		}
		c = &refreshCall{done: make(chan struct{})}
		if len(rp.refreshes) < maxRefreshCalls {
			rp.refreshes[key] = c
		}
		rp.refreshMu.Unlock()
		c.d, c.err = rp.doRefresh(d)
		rp.refreshMu.Lock()
		c.finished = rp.now()
		rp.refreshMu.Unlock()
		close(c.done)
		return c.d, c.err
	}
	rp.refreshMu.Unlock()
	select {
	case <-c.done:
		return c.d, c.err
	case <-ctx.Done():
		return SessionData{}, ctx.Err()
	}
}

func (rp *RP) doRefresh(d SessionData) (SessionData, error) {
	ep, err := rp.provider(rp.ctx)
	if err != nil {
		return SessionData{}, err
	}
	tr, err := rp.refreshGrant(ep, d.RefreshToken)
	if err != nil {
		return SessionData{}, err
	}
	now := rp.now()
	nd := SessionData{Start: d.Start, IDToken: d.IDToken, AccessToken: tr.AccessToken, RefreshToken: d.RefreshToken}
	if tr.RefreshToken != "" {
		nd.RefreshToken = tr.RefreshToken
	}
	var idExp time.Time
	if tr.IDToken != "" {
		old, err := payloadClaims(d.IDToken)
		if err != nil {
			return SessionData{}, err
		}
		sub, _ := old["sub"].(string)
		tok, err := rp.verifyIDToken(rp.ctx, ep, tr.IDToken, "", sub)
		if err != nil {
			// A provider that answers the grant with a bad ID token will do so again.
			return SessionData{}, &tokenError{Rejected: true, Err: err}
		}
		nd.IDToken, idExp = tr.IDToken, tok.Expiry
	}
	nd.Expiry = rp.expiry(d.Start, now, tr, idExp)
	return nd, nil
}

// logout clears the session cookies and ends the session at the provider when it has an
// end_session_endpoint (RP-initiated logout, with id_token_hint and
// post_logout_redirect_uri), else redirects to PostLogoutRedirectURL.
func (rp *RP) logout(w http.ResponseWriter, r *http.Request, scheme string) Result {
	d, _, hasSession := rp.readSession(r)
	for _, c := range rp.jar.clearCookies() {
		http.SetCookie(w, c)
	}
	post := rp.cfg.PostLogoutRedirectURL
	target := post
	end := rp.cfg.EndSessionEndpoint
	if end == "" {
		ctx, cancel := context.WithTimeout(r.Context(), rp.timeout)
		if ep, err := rp.provider(ctx); err == nil {
			end = ep.endSession
		}
		cancel()
	}
	if end != "" {
		if u, err := url.Parse(end); err == nil {
			abs := post
			if strings.HasPrefix(post, "/") {
				abs = scheme + "://" + r.Host + post
			}
			q := u.Query()
			q.Set("client_id", rp.cfg.ClientID)
			q.Set("post_logout_redirect_uri", abs)
			if hasSession {
				q.Set("id_token_hint", d.IDToken)
			}
			u.RawQuery = q.Encode()
			target = u.String()
		}
	}
	redirect(w, target)
	return Result{Handled: true, Outcome: OutcomeLogout}
}

// unavailable answers a failure to reach or use the provider.
func (rp *RP) unavailable(w http.ResponseWriter, step string, err error) Result {
	rp.cfg.Log.Error(err, "oidc: provider unavailable", "step", step)
	w.Header().Set("Cache-Control", "no-store")
	code := http.StatusBadGateway
	if step == "discovery" || step == "ID token keys" {
		code = http.StatusServiceUnavailable
	}
	rp.cfg.Errors(w, "identity provider unavailable", code)
	return Result{Handled: true, Outcome: OutcomeUnavailable}
}

// redirect answers 302 to target, never cached.
func redirect(w http.ResponseWriter, target string) {
	h := w.Header()
	h.Set("Location", target)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

func clipString(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
