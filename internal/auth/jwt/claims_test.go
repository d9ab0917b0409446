package jwt

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestSplitClaimPath(t *testing.T) {
	for in, want := range map[string][]string{
		"sub":                          {"sub"},
		"org.id":                       {"org", "id"},
		`https://example\.com/org`:     {"https://example.com/org"},
		`https://example\.com/org.id`:  {"https://example.com/org", "id"},
		`a\.b\.c.d`:                    {"a.b.c", "d"},
		`a\\.b`:                        {`a\`, "b"},
		`a\b`:                          {`a\b`},
		`a\`:                           {`a\`},
		"":                             {""},
		"a..b":                         {"a", "", "b"},
		".":                            {"", ""},
		`\.`:                           {"."},
		`realm_access.roles`:           {"realm_access", "roles"},
		`x\\\.y`:                       {`x\.y`},
		`https://ns\.example\.com/r.x`: {"https://ns.example.com/r", "x"},
	} {
		if got := SplitClaimPath(in); !slices.Equal(got, want) {
			t.Errorf("SplitClaimPath(%q) = %q, want %q", in, got, want)
		}
		if got := SplitClaimPath(JoinClaimPath(want)); !slices.Equal(got, want) {
			t.Errorf("round trip of %q = %q", want, got)
		}
	}
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	m, err := decodeClaims([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTokenClaim(t *testing.T) {
	tok := &Token{Claims: decode(t, `{"sub":"u","org":{"id":7,"team":{"name":"x"}},"https://example.com/org":"acme","a":[1]}`)}
	for path, want := range map[string]any{
		"sub":                      "u",
		"org.id":                   json.Number("7"),
		"org.team.name":            "x",
		`https://example\.com/org`: "acme",
	} {
		got, ok := tok.Claim(SplitClaimPath(path))
		if !ok || got != want {
			t.Errorf("Claim(%s) = %v, %v; want %v", path, got, ok, want)
		}
	}
	for _, path := range []string{"nope", "org.nope", "sub.x", "a.0", "https://example.com/org", "org.id.x"} {
		if v, ok := tok.Claim(SplitClaimPath(path)); ok {
			t.Errorf("Claim(%s) = %v, want none", path, v)
		}
	}
	if _, ok := tok.Claim(nil); ok {
		t.Error("Claim(nil) found something")
	}
}

func TestHeaderValue(t *testing.T) {
	c := decode(t, `{"s":"abc","i":1700000000,"e":1.7e+09,"f":1.5,"big":123456789012345678901234567890,
		"neg":-3,"t":true,"fl":false,"arr":["a","b","c"],"one":["x"],"empty":[],"mixed":["a",1],
		"obj":{"a":1},"null":null,"crlf":"a\r\nX-Evil: 1","nul":"a\u0000","tab":"a\tb","utf":"zoë",
		"arrcrlf":["a","b\nc"],"tiny":1e-7,"huge":1e400}`)
	for name, want := range map[string]string{
		"s": "abc", "i": "1700000000", "e": "1700000000", "f": "1.5",
		"big": "123456789012345678901234567890", "neg": "-3", "t": "true", "fl": "false",
		"arr": "a,b,c", "one": "x", "empty": "", "tab": "a\tb", "utf": "zoë", "tiny": "0.0000001",
	} {
		got, ok := HeaderValue(c[name])
		if !ok || got != want {
			t.Errorf("HeaderValue(%s) = %q, %v; want %q", name, got, ok, want)
		}
	}
	for _, name := range []string{"mixed", "obj", "null", "crlf", "nul", "arrcrlf", "huge"} {
		if got, ok := HeaderValue(c[name]); ok {
			t.Errorf("HeaderValue(%s) = %q, want skipped", name, got)
		}
	}
	// Values not from decodeClaims.
	for v, want := range map[any]string{1.7e9: "1700000000", 42: "42", int64(-1): "-1"} {
		if got, ok := HeaderValue(v); !ok || got != want {
			t.Errorf("HeaderValue(%v) = %q", v, got)
		}
	}
	if got, ok := HeaderValue([]string{"a", "b"}); !ok || got != "a,b" {
		t.Errorf("HeaderValue([]string) = %q", got)
	}
}

func TestHasScopes(t *testing.T) {
	for name, tc := range map[string]struct {
		claims   string
		required []string
		want     bool
	}{
		"scope string":      {`{"scope":"read write  admin"}`, []string{"read", "admin"}, true},
		"scope missing one": {`{"scope":"read write"}`, []string{"read", "admin"}, false},
		"scope no prefix":   {`{"scope":"read:all"}`, []string{"read"}, false},
		"scp array":         {`{"scp":["read","write"]}`, []string{"write"}, true},
		"scp string":        {`{"scp":"read write"}`, []string{"read", "write"}, true},
		"union":             {`{"scope":"read","scp":["write"]}`, []string{"read", "write"}, true},
		"none required":     {`{}`, nil, true},
		"no claims":         {`{}`, []string{"read"}, false},
		"scope number":      {`{"scope":5}`, []string{"5"}, false},
		"scp mixed array":   {`{"scp":["read",7]}`, []string{"read"}, true},
	} {
		if got := HasScopes(decode(t, tc.claims), tc.required); got != tc.want {
			t.Errorf("%s: HasScopes = %v", name, got)
		}
	}
}

func TestClaimContains(t *testing.T) {
	c := decode(t, `{"s":"admin","arr":["a","b"],"n":42,"b":true,"obj":{"x":"admin"},"nested":[["admin"]],"mixed":[1,"z"]}`)
	for name, tc := range map[string]struct {
		values []string
		want   bool
	}{
		"s":      {[]string{"user", "admin"}, true},
		"arr":    {[]string{"b"}, true},
		"n":      {[]string{"42"}, true},
		"b":      {[]string{"true"}, true},
		"obj":    {[]string{"admin"}, false},
		"nested": {[]string{"admin"}, false},
		"mixed":  {[]string{"1"}, true},
		"none":   {[]string{""}, false},
	} {
		if got := ClaimContains(c[name], tc.values); got != tc.want {
			t.Errorf("ClaimContains(%s, %v) = %v", name, tc.values, got)
		}
	}
	if ClaimContains("admin", []string{"Admin"}) {
		t.Error("case-insensitive match")
	}
	if !ClaimContains([]string{"x", "y"}, []string{"y"}) {
		t.Error("[]string")
	}
}
