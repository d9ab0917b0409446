package filter

import (
	"net/http/httptest"
	"testing"

	"apoxy.dev/apoxy/internal/ir"
)

func ptr[T any](v T) *T { return &v }

func TestURLRewrite(t *testing.T) {
	for _, tc := range []struct {
		match, path string
		rw          ir.PathRewrite
		want        string
	}{
		{"/api", "/api/items", ir.PathRewrite{PrefixReplace: ptr("/v2")}, "/v2/items"},
		{"/api/", "/api", ir.PathRewrite{PrefixReplace: ptr("/v2")}, "/v2"},
		{"/api", "/api/items", ir.PathRewrite{PrefixReplace: ptr("/")}, "/items"},
		{"/api", "/api", ir.PathRewrite{PrefixReplace: ptr("/")}, "/"},
		{"/api", "/api/x", ir.PathRewrite{FullPath: ptr("/fixed")}, "/fixed"},
	} {
		r := httptest.NewRequest("GET", "http://a.example.com"+tc.path, nil)
		rw := tc.rw
		x, _, _ := run(t, prefixRoute(tc.match, ir.Filter{Type: ir.FilterURLRewrite, URLRewrite: &ir.URLRewrite{Hostname: "b.example.com", Path: &rw}}), r, nil)
		if x.Req.URL.Path != tc.want || x.Req.Host != "b.example.com" {
			t.Errorf("match %s, path %s: upstream gets %s%s, want b.example.com%s", tc.match, tc.path, x.Req.Host, x.Req.URL.Path, tc.want)
		}
	}
}

func TestRewriteLeavesTheServersURLAlone(t *testing.T) {
	r := httptest.NewRequest("GET", "/api/x", nil)
	orig := r.URL
	run(t, prefixRoute("/api", ir.Filter{Type: ir.FilterURLRewrite, URLRewrite: &ir.URLRewrite{Path: &ir.PathRewrite{FullPath: ptr("/y")}}}), r, nil)
	if orig.Path != "/api/x" {
		t.Errorf("the server's URL was edited: %s", orig.Path)
	}
}

func TestRewritePathKeepsUnmatchedPaths(t *testing.T) {
	m := &ir.Match{PathType: ir.PathPrefix, Path: "/api"}
	// A path that no longer starts with the prefix (rewritten by an earlier filter) stays.
	if got := RewritePath("/other", &ir.PathRewrite{PrefixReplace: ptr("/v2")}, m); got != "/other" {
		t.Errorf("got %s", got)
	}
	if got := RewritePath("/apix", &ir.PathRewrite{PrefixReplace: ptr("/v2")}, m); got != "/apix" {
		t.Errorf("segment boundary: got %s", got)
	}
}
