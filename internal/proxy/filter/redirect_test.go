package filter

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"

	"apoxy.dev/apoxy/internal/ir"
)

func TestRedirect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target string
		tls    bool
		rd     ir.Redirect
		want   string
	}{
		{"scheme change drops the port", "http://a.example.com:8080/x?q=1", false, ir.Redirect{Scheme: "https", StatusCode: 301}, "https://a.example.com/x?q=1"},
		{"keeps the request's port", "http://a.example.com:8080/x", false, ir.Redirect{Hostname: "b.example.com", StatusCode: 302}, "http://b.example.com:8080/x"},
		{"listener port when Host has none", "http://a.example.com/x", false, ir.Redirect{StatusCode: 302}, "http://a.example.com:8080/x"},
		{"explicit port", "http://a.example.com/x", true, ir.Redirect{Port: 8443, StatusCode: 302}, "https://a.example.com:8443/x"},
		{"prefix path", "http://a.example.com/old/page", false, ir.Redirect{Path: &ir.PathRewrite{PrefixReplace: ptr("/new")}, Port: 80, StatusCode: 308}, "http://a.example.com/new/page"},
		{"escaped path stays escaped", "http://a.example.com/a%3Fb", false, ir.Redirect{Port: 80, StatusCode: 302}, "http://a.example.com/a%3Fb"},
	} {
		r := httptest.NewRequest("GET", tc.target, nil)
		if tc.tls {
			r.TLS = &tls.ConnectionState{}
		}
		rt := prefixRoute("/old")
		rd := tc.rd
		rt.Redirect = &rd
		_, rec, answered := run(t, rt, r, nil)
		if !answered || rec.Code != tc.rd.StatusCode || rec.Header().Get("Location") != tc.want {
			t.Errorf("%s: %d %q, want %d %q", tc.name, rec.Code, rec.Header().Get("Location"), tc.rd.StatusCode, tc.want)
		}
	}
}
