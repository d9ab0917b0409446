package cli

import (
	"context"
	"slices"
	"strings"
	"testing"

	"apoxy.dev/apoxy/internal/edgetest"
)

// `apoxy domain get api.example.com` finds every DomainRecord of that FQDN (one per type),
// an object name finds its object, a zone is found by its DNS name; an unknown name says
// how to list them.
func TestDomainResolve(t *testing.T) {
	e := edgetest.Start(t, edgetest.Options{})
	e.Apply(`
apiVersion: core.apoxy.dev/v1alpha3
kind: DomainZone
metadata: {name: example-com}
spec: {domainName: example.com}
---
apiVersion: core.apoxy.dev/v1alpha3
kind: DomainRecord
metadata: {name: api-a}
spec: {zone: example-com, name: api.example.com, target: {dns: {a: [192.0.2.1]}}}
---
apiVersion: core.apoxy.dev/v1alpha3
kind: DomainRecord
metadata: {name: api-txt}
spec: {zone: example-com, name: API.example.com., target: {dns: {txt: [hello]}}}
`)
	ctx := context.Background()
	for _, c := range []struct {
		k    domainKind
		arg  string
		want []string
	}{
		{recordKind, "api.example.com", []string{"api-a", "api-txt"}},
		{recordKind, "api-txt", []string{"api-txt"}},
		{zoneKind, "example.com.", []string{"example-com"}},
		{zoneKind, "example-com", []string{"example-com"}},
	} {
		got, err := c.k.resolve(ctx, e.Client, c.arg)
		slices.Sort(got)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s %q: %v %v, want %v", c.k.singular, c.arg, got, err, c.want)
		}
	}
	if _, err := recordKind.resolve(ctx, e.Client, "www.example.com"); err == nil || !strings.Contains(err.Error(), "apoxy domain list") {
		t.Errorf("unknown: %v", err)
	}
}
