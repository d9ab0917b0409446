package v1alpha2

import (
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestValidateBackend(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want []string // field paths, in order
	}{
		{"seed example", "endpoints: [{fqdn: api.internal.example.com}]\nprotocol: h2", nil},
		{"ip and trailing-dot fqdn", "endpoints: [{ip: '::1'}, {fqdn: example.com.}]", nil},
		{"plain protocol", "endpoints: [{ip: 10.0.0.1}]\nprotocol: plain", nil},
		{"dynamic proxy without endpoints", "dynamicProxy: {}", nil},
		{"nothing", "{}", []string{"spec.endpoints"}},
		{"both and neither", "endpoints: [{fqdn: a.b, ip: 1.2.3.4}, {}]", []string{"spec.endpoints[0]", "spec.endpoints[1]"}},
		{"uppercase fqdn", "endpoints: [{fqdn: API.example.com}]", []string{"spec.endpoints[0].fqdn"}},
		{"dynamic proxy with two endpoints", "dynamicProxy: {}\nendpoints: [{ip: 1.1.1.1}, {ip: 2.2.2.2}]", []string{"spec.endpoints"}},
		{"bad lookup family", "dynamicProxy: {dnsCacheConfig: {dnsLookupFamily: v5}}", []string{"spec.dynamicProxy.dnsCacheConfig.dnsLookupFamily"}},
		{"health interval too short", "endpoints: [{ip: 1.1.1.1}]\nhealthCheck: {tcp: {}, interval: 10ms, timeout: 5ms}", []string{"spec.healthCheck.interval"}},
		{"too many endpoints", "endpoints: [" + strings.Repeat("{ip: 10.0.0.1}, ", MaxBackendEndpoints) + "{ip: 10.0.0.2}]", []string{"spec.endpoints"}},
		{"health http bad path and method", "endpoints: [{ip: 1.1.1.1}]\nhealthCheck: {http: {path: health, method: PUT}}", []string{"spec.healthCheck.http.path", "spec.healthCheck.http.method"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &Backend{}
			if err := yaml.UnmarshalStrict([]byte(tc.spec), &b.Spec); err != nil {
				t.Fatal(err)
			}
			SetDefaultsBackend(b)
			var got []string
			for _, e := range ValidateBackend(b) {
				got = append(got, e.Field)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors on %v, want %v: %v", got, tc.want, ValidateBackend(b))
			}
		})
	}
}

// FuzzBackend: any spec that decodes can be defaulted and validated without panicking, and
// defaulting is idempotent.
func FuzzBackend(f *testing.F) {
	f.Add("endpoints: [{fqdn: api.internal.example.com}]\nprotocol: h2")
	f.Add("dynamicProxy: {dnsCacheConfig: {dnsRefreshRate: 1s}}")
	f.Add("endpoints: [{ip: 10.0.0.1}]\nhealthCheck: {http: {expectedStatuses: [200, 204]}, interval: 1s}")
	f.Fuzz(func(t *testing.T, in string) {
		b := &Backend{}
		if yaml.UnmarshalStrict([]byte(in), &b.Spec) != nil {
			return
		}
		SetDefaultsBackend(b)
		once := b.DeepCopy()
		SetDefaultsBackend(b)
		if !reflect.DeepEqual(once, b) {
			t.Fatalf("defaulting not idempotent")
		}
		_ = ValidateBackend(b)
	})
}
