package jwt

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

func TestExtract(t *testing.T) {
	custom := Extractor{
		Headers: []HeaderSource{{Name: "Authorization", Prefix: "Bearer "}, {Name: "X-Jwt"}},
		Cookies: []string{"access_token"},
		Query:   []string{"access_token", "jwt"},
	}
	for name, tc := range map[string]struct {
		e       Extractor
		setup   func(r *http.Request)
		url     string
		want    string
		where   Location
		noToken bool
	}{
		"default bearer": {
			setup: func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc.def.ghi") },
			want:  "abc.def.ghi", where: Location{Kind: LocationHeader, Name: "Authorization"},
		},
		"scheme case-insensitive": {
			setup: func(r *http.Request) { r.Header.Set("Authorization", "bEARER   abc ") },
			want:  "abc", where: Location{Kind: LocationHeader, Name: "Authorization"},
		},
		"basic is not bearer": {
			setup:   func(r *http.Request) { r.Header.Set("Authorization", "Basic dXNlcjpwdw==") },
			noToken: true,
		},
		"bearer without token": {
			setup:   func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") },
			noToken: true,
		},
		"default ignores cookies": {
			setup:   func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "access_token", Value: "c"}) },
			noToken: true,
		},
		"second header": {
			e: custom,
			setup: func(r *http.Request) {
				r.Header.Set("Authorization", "Basic x")
				r.Header.Set("X-JWT", "tok")
			},
			want: "tok", where: Location{Kind: LocationHeader, Name: "X-Jwt"},
		},
		"header before cookie": {
			e: custom,
			setup: func(r *http.Request) {
				r.Header.Set("Authorization", "Bearer h")
				r.AddCookie(&http.Cookie{Name: "access_token", Value: "c"})
			},
			url:  "/?access_token=q",
			want: "h", where: Location{Kind: LocationHeader, Name: "Authorization"},
		},
		"cookie before query": {
			e: custom,
			setup: func(r *http.Request) {
				r.AddCookie(&http.Cookie{Name: "other", Value: "o"})
				r.AddCookie(&http.Cookie{Name: "access_token", Value: "c"})
			},
			url:  "/?access_token=q",
			want: "c", where: Location{Kind: LocationCookie, Name: "access_token"},
		},
		"empty cookie skipped": {
			e:     custom,
			setup: func(r *http.Request) { r.Header.Set("Cookie", "access_token=; x=1") },
			url:   "/?jwt=q2",
			want:  "q2", where: Location{Kind: LocationQuery, Name: "jwt"},
		},
		"query escaped": {
			e:    custom,
			url:  "/p?a=1&access%5Ftoken=a%2Eb&b=2",
			want: "a.b", where: Location{Kind: LocationQuery, Name: "access_token"},
		},
		"nothing": {e: custom, url: "/?x=1", noToken: true},
	} {
		t.Run(name, func(t *testing.T) {
			u := tc.url
			if u == "" {
				u = "/"
			}
			r := httptest.NewRequest("GET", u, nil)
			if tc.setup != nil {
				tc.setup(r)
			}
			tok, where, ok := tc.e.Extract(r)
			if tc.noToken {
				if ok {
					t.Fatalf("found %q in %v", tok, where)
				}
				return
			}
			if !ok || tok != tc.want || where.Kind != tc.where.Kind || where.Name != tc.where.Name {
				t.Fatalf("Extract = %q, %v, %v; want %q in %v", tok, where, ok, tc.want, tc.where)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	e := Extractor{
		Headers: []HeaderSource{{Name: "authorization", Prefix: "Bearer "}, {Name: "X-Jwt"}},
		Cookies: []string{"access_token"},
		Query:   []string{"access_token"},
	}

	t.Run("header", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/?access_token=q", nil)
		r.Header.Add("X-Jwt", "tok")
		r.Header.Add("X-Jwt", "other")
		r.AddCookie(&http.Cookie{Name: "access_token", Value: "c"})
		tok, where, ok := e.Extract(r)
		if !ok || tok != "tok" || where.String() != "header X-Jwt" {
			t.Fatalf("Extract = %q %v", tok, where)
		}
		e.Remove(r, where)
		if got := r.Header.Values("X-Jwt"); !slices.Equal(got, []string{"other"}) {
			t.Errorf("X-Jwt = %q", got)
		}
		if r.URL.RawQuery != "access_token=q" || r.Header.Get("Cookie") != "access_token=c" {
			t.Error("removal touched another place")
		}
	})

	t.Run("authorization", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer tok")
		_, where, _ := e.Extract(r)
		e.Remove(r, where)
		if _, present := r.Header["Authorization"]; present {
			t.Errorf("Authorization still present: %q", r.Header["Authorization"])
		}
	})

	t.Run("cookie", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/?access_token=q", nil)
		r.Header.Add("Cookie", "a=1; access_token=c;b=2")
		r.Header.Add("Cookie", "access_token=d")
		r.Header.Add("Cookie", "c=3")
		tok, where, ok := e.Extract(r)
		if !ok || tok != "c" || where.Kind != LocationCookie {
			t.Fatalf("Extract = %q %v", tok, where)
		}
		e.Remove(r, where)
		if got := r.Header.Values("Cookie"); !slices.Equal(got, []string{"a=1; b=2", "c=3"}) {
			t.Errorf("Cookie = %q", got)
		}
		if r.URL.RawQuery != "access_token=q" {
			t.Error("query touched")
		}
		// The only cookie: the header goes.
		r2 := httptest.NewRequest("GET", "/", nil)
		r2.Header.Set("Cookie", "access_token=c")
		e.Remove(r2, where)
		if _, present := r2.Header["Cookie"]; present {
			t.Error("empty Cookie header left")
		}
	})

	t.Run("query", func(t *testing.T) {
		raw := "a=%2F1&access_token=q&b=x+y&access%5Ftoken=again&&c"
		r := httptest.NewRequest("GET", "/p?"+raw, nil)
		tok, where, ok := e.Extract(r)
		if !ok || tok != "q" || where.Kind != LocationQuery {
			t.Fatalf("Extract = %q %v", tok, where)
		}
		e.Remove(r, where)
		if want := "a=%2F1&b=x+y&&c"; r.URL.RawQuery != want {
			t.Errorf("RawQuery = %q, want %q", r.URL.RawQuery, want)
		}
		r2 := httptest.NewRequest("GET", "/p?access_token=q", nil)
		e.Remove(r2, where)
		if r2.URL.RawQuery != "" {
			t.Errorf("RawQuery = %q", r2.URL.RawQuery)
		}
	})
}
