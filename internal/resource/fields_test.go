package resource

import (
	"testing"

	gatewayv1 "apoxy.dev/apoxy/api/gateway/v1"
)

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"httproot", "httproute", 2}, {"kitten", "sitting", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.d {
			t.Errorf("%q %q: %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}

func TestNearestField(t *testing.T) {
	k, _ := Lookup(gatewayv1.SchemeGroupVersion.WithKind("HTTPRoute"))
	for path, want := range map[string]string{
		"spec.hostnamez":               "spec.hostnames",
		"spec.rules[0].matches[0].pth": "spec.rules[0].matches[0].path",
		"spec.hostnames":               "",
		"spec.zzzzzzzzzzzz":            "",
		"spec.nosuch.value":            "",
	} {
		if got := k.NearestField(path); got != want {
			t.Errorf("NearestField(%q) = %q, want %q", path, got, want)
		}
	}
}
