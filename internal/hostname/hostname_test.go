package hostname

import "testing"

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, host string
		want          bool
	}{
		{"", "a.example.com", true},
		{"*", "anything", true},
		{"api.example.com", "api.example.com", true},
		{"api.example.com", "API.Example.com", true},
		{"api.example.com", "x.api.example.com", false},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "a.b.example.com", true}, // one or more labels
		{"*.example.com", "example.com", false},
		{"*.example.com", ".example.com", false},
		{"*.example.com", "A.EXAMPLE.COM", true},
		{"*.example.com", "aexample.com", false},
	}
	for _, c := range cases {
		if got := Match(c.pattern, c.host); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.host, got, c.want)
		}
	}
}

func TestCompareOrdersMostSpecificFirst(t *testing.T) {
	ordered := []string{"a.b.example.com", "b.example.com", "*.b.example.com", "*.example.com", "*"}
	for i := range ordered {
		for j := range ordered {
			got := Compare(ordered[i], ordered[j])
			if (i < j && got >= 0) || (i > j && got <= 0) || (i == j && got != 0) {
				t.Errorf("Compare(%q, %q) = %d", ordered[i], ordered[j], got)
			}
		}
	}
	if Compare("", "*") != 0 {
		t.Error(`"" and "*" are both the catch-all`)
	}
}

func TestIntersect(t *testing.T) {
	cases := []struct{ listener, route, want string }{
		{"", "a.example.com", "a.example.com"},
		{"*.example.com", "*", "*.example.com"},
		{"*.example.com", "a.example.com", "a.example.com"},
		{"a.example.com", "*.example.com", "a.example.com"},
		{"*.example.com", "*.a.example.com", "*.a.example.com"},
		{"*.a.example.com", "*.example.com", "*.a.example.com"},
		{"a.example.com", "b.example.com", ""},
		{"*.example.com", "example.com", ""},
		{"*.example.org", "*.example.com", ""},
	}
	for _, c := range cases {
		got, ok := Intersect(c.listener, c.route)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("Intersect(%q, %q) = %q %v, want %q", c.listener, c.route, got, ok, c.want)
		}
	}
}

func TestOverlap(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"a.example.com", "A.example.com", true},
		{"*.example.com", "a.b.example.com", true},
		{"*.example.com", "*.b.example.com", true},
		{"*.example.com", "example.com", false},
		{"*", "a.example.com", false},
		{"*", "", true},
	}
	for _, c := range cases {
		if Overlap(c.a, c.b) != c.want || Overlap(c.b, c.a) != c.want {
			t.Errorf("Overlap(%q, %q) want %v", c.a, c.b, c.want)
		}
	}
}

func TestIndex(t *testing.T) {
	var x Index[string]
	x.Add("*", "any")
	x.Add("*.example.com", "wild")
	x.Add("*.b.example.com", "narrow")
	x.Add("a.b.example.com", "exact")
	x.Sort()
	for host, want := range map[string]string{"a.b.example.com": "exact", "c.b.example.com": "narrow", "c.example.com": "wild", "other.org": "any"} {
		if got, _ := x.Lookup(host); got != want {
			t.Errorf("Lookup(%s) = %q, want %q", host, got, want)
		}
	}
	var seen []string
	x.Each("c.b.example.com", func(v string) bool { seen = append(seen, v); return false })
	if len(seen) != 3 || seen[0] != "narrow" || seen[1] != "wild" || seen[2] != "any" {
		t.Errorf("Each = %v", seen)
	}
	if allocs := testing.AllocsPerRun(100, func() { x.Lookup("c.b.example.com") }); allocs != 0 {
		t.Errorf("Lookup allocates %v", allocs)
	}
}
