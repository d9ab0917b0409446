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

func TestValidateProxy(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want []string // field paths, in order
	}{
		{"empty", "{}", nil},
		{"redis store", "rateLimit: {redis: {address: redis.internal:6379, passwordSecretRef: {name: redis}, tls: true, database: 3}}", nil},
		{"redis on IPv6", "rateLimit: {redis: {address: '[2001:db8::5]:6379'}}", nil},
		{"redis on IPv4", "rateLimit: {redis: {address: 10.0.0.5:6379}}", nil},
		{"rateLimit without store", "rateLimit: {}", []string{"spec.rateLimit.redis"}},
		{"redis without address", "rateLimit: {redis: {tls: true}}", []string{"spec.rateLimit.redis.address"}},
		{"redis address without port", "rateLimit: {redis: {address: redis.internal}}", []string{"spec.rateLimit.redis.address"}},
		{"redis port 0", "rateLimit: {redis: {address: 'redis:0'}}", []string{"spec.rateLimit.redis.address"}},
		{"redis bad host", "rateLimit: {redis: {address: 'Redis_Host:6379'}}", []string{"spec.rateLimit.redis.address"}},
		{"redis database 16", "rateLimit: {redis: {address: 'redis:6379', database: 16}}", []string{"spec.rateLimit.redis.database"}},
		{"redis secret without name", "rateLimit: {redis: {address: 'redis:6379', passwordSecretRef: {key: pw}}}", []string{"spec.rateLimit.redis.passwordSecretRef.name"}},
		{"redis secret bad key", "rateLimit: {redis: {address: 'redis:6379', passwordSecretRef: {name: s, key: 'a b'}}}", []string{"spec.rateLimit.redis.passwordSecretRef.key"}},
		{"unknown provider", "provider: aws", []string{"spec.provider"}},
		{"http limits", "http: {idleTimeout: 30s, requestHeaderTimeout: 5s, requestBodyTimeout: 10s, maxRequestHeaderBytes: 8192, maxRequestHeaders: 50, " +
			"http2: {maxConcurrentStreams: 100, initialStreamWindowSize: 65535, initialConnectionWindowSize: 1048576, writeTimeout: 10s}}", nil},
		{"http timeouts below a second", "http: {idleTimeout: 10ms, requestHeaderTimeout: 0s, requestBodyTimeout: 500ms, http2: {writeTimeout: 1ms}}",
			[]string{"spec.http.idleTimeout", "spec.http.requestHeaderTimeout", "spec.http.requestBodyTimeout", "spec.http.http2.writeTimeout"}},
		{"http header sizes out of range", "http: {maxRequestHeaderBytes: 100, maxRequestHeaders: 0}",
			[]string{"spec.http.maxRequestHeaderBytes", "spec.http.maxRequestHeaders"}},
		{"http2 out of range", "http: {http2: {maxConcurrentStreams: 0, initialStreamWindowSize: 1000, initialConnectionWindowSize: -1}}",
			[]string{"spec.http.http2.maxConcurrentStreams", "spec.http.http2.initialStreamWindowSize", "spec.http.http2.initialConnectionWindowSize"}},
		{"http2 connection window below stream window", "http: {http2: {initialStreamWindowSize: 1048576, initialConnectionWindowSize: 65535}}",
			[]string{"spec.http.http2.initialConnectionWindowSize"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			px := &Proxy{}
			if err := yaml.UnmarshalStrict([]byte(tc.spec), &px.Spec); err != nil {
				t.Fatal(err)
			}
			SetDefaultsProxy(px)
			var got []string
			for _, e := range ValidateProxy(px) {
				got = append(got, e.Field)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors on %v, want %v: %v", got, tc.want, ValidateProxy(px))
			}
		})
	}
	px := &Proxy{Spec: ProxySpec{RateLimit: &ProxyRateLimit{Redis: &RedisStore{Address: "r:6379", PasswordSecretRef: &SecretKeyRef{Name: "s"}}}}}
	SetDefaultsProxy(px)
	if k := px.Spec.RateLimit.Redis.PasswordSecretRef.Key; k != DefaultRedisPasswordKey {
		t.Errorf("password key defaulted to %q", k)
	}
}
