package oidctest

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// A provider on a chosen issuer URL (a name the client maps to its address) logs in the user
// its form names, and the ID token carries that user's claims; the counters count.
func TestChosenIssuerFormLoginClaims(t *testing.T) {
	bob := User{Login: "bob", Subject: "bob-id", Email: "bob@example.com", Claims: map[string]any{"hd": "example.com"}}
	p := NewProvider(t, Options{Issuer: "https://idp.example.com", ClientID: "app", ClientSecret: "s", FormLogin: true,
		Users: []User{Alice, bob}, AccessTTL: 90 * time.Second})
	p.AllowRedirect("https://app.example.com/cb", "")
	c := p.Client()
	tr := c.Transport.(*http.Transport)
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, p.Addr())
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs, ServerName: "example.com"} // httptest's certificate
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	var md struct {
		Issuer                string `json:"issuer"`
		AuthorizationEndpoint string `json:"authorization_endpoint"`
		TokenEndpoint         string `json:"token_endpoint"`
	}
	resp, err := c.Get("https://idp.example.com/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if md.Issuer != "https://idp.example.com" || md.AuthorizationEndpoint != "https://idp.example.com/authorize" || p.DiscoveryHits.Load() != 1 {
		t.Fatalf("discovery %+v, %d hits", md, p.DiscoveryHits.Load())
	}

	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {"https://app.example.com/cb"},
		"scope": {"openid email offline_access"}, "state": {"st"}, "nonce": {"n"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	resp, err = c.Get(md.AuthorizationEndpoint + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loginURL, _ := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if resp, err = c.Get(loginURL.String()); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("login form: %v %v", resp, err)
	}
	resp.Body.Close()
	if resp, err = p.LoginForm(c, loginURL.String(), "nobody"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown user: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = p.LoginForm(c, loginURL.String(), "bob")
	for err == nil && resp.StatusCode == http.StatusFound && !strings.HasPrefix(resp.Header.Get("Location"), "https://app.example.com/") {
		resp.Body.Close()
		next, _ := resp.Request.URL.Parse(resp.Header.Get("Location"))
		resp, err = c.Get(next.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cb, _ := url.Parse(resp.Header.Get("Location"))
	if cb.Query().Get("state") != "st" || cb.Query().Get("code") == "" {
		t.Fatalf("back to the app with %s", cb)
	}

	form := url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")}, "redirect_uri": {"https://app.example.com/cb"},
		"code_verifier": {verifier}}
	req, _ := http.NewRequest(http.MethodPost, md.TokenEndpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "s")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		IDToken      string `json:"id_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int    `json:"expires_in"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	parts := strings.Split(tok.IDToken, ".")
	if len(parts) != 3 || tok.RefreshToken == "" || tok.ExpiresIn < 80 || tok.ExpiresIn > 90 {
		t.Fatalf("token response %+v", tok)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	if claims["iss"] != "https://idp.example.com" || claims["sub"] != "bob-id" || claims["email"] != "bob@example.com" ||
		claims["hd"] != "example.com" || claims["nonce"] != "n" {
		t.Errorf("ID token claims %v", claims)
	}
	if p.CodeGrants.Load() != 1 || p.RefreshGrants.Load() != 0 {
		t.Errorf("grants: %d code, %d refresh", p.CodeGrants.Load(), p.RefreshGrants.Load())
	}
}
