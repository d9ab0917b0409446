package v1alpha2

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var backendProtocols = []string{"", string(BackendProtocolPlain), string(BackendProtocolTLS), string(BackendProtocolH2), string(BackendProtocolH2C)}

// ValidateBackend checks a Backend's spec. Every problem is returned, each naming its field.
// MaxBackendEndpoints bounds a Backend's endpoints (as Envoy Gateway's Backend does): each one
// is resolved, health checked and listed in status, so the list must stay small; put larger
// pools behind a DNS name.
const MaxBackendEndpoints = 64

func ValidateBackend(b *Backend) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	s := &b.Spec
	if len(s.Endpoints) == 0 && s.DynamicProxy == nil {
		errs = append(errs, field.Required(spec.Child("endpoints"), "list at least one endpoint ({fqdn: NAME} or {ip: ADDRESS}), or set dynamicProxy"))
	}
	if len(s.Endpoints) > MaxBackendEndpoints {
		errs = append(errs, field.TooMany(spec.Child("endpoints"), len(s.Endpoints), MaxBackendEndpoints))
	}
	if s.DynamicProxy != nil && len(s.Endpoints) > 1 {
		errs = append(errs, field.Invalid(spec.Child("endpoints"), len(s.Endpoints), "dynamicProxy allows at most one endpoint"))
	}
	for i, ep := range s.Endpoints {
		p := spec.Child("endpoints").Index(i)
		switch {
		case ep.FQDN != "" && ep.IP != "":
			errs = append(errs, field.Invalid(p, ep, "set exactly one of fqdn or ip, not both"))
		case ep.FQDN == "" && ep.IP == "":
			errs = append(errs, field.Required(p, "set exactly one of fqdn or ip"))
		case ep.FQDN != "":
			name := strings.TrimSuffix(ep.FQDN, ".")
			for _, msg := range validation.IsDNS1123Subdomain(name) {
				errs = append(errs, field.Invalid(p.Child("fqdn"), ep.FQDN, msg))
			}
		default:
			if _, err := netip.ParseAddr(ep.IP); err != nil {
				errs = append(errs, field.Invalid(p.Child("ip"), ep.IP, "must be an IPv4 or IPv6 address"))
			}
		}
	}
	if !slices.Contains(backendProtocols, string(s.Protocol)) {
		errs = append(errs, field.NotSupported(spec.Child("protocol"), s.Protocol, backendProtocols[1:]))
	}
	if dp := s.DynamicProxy; dp != nil && dp.DNSCacheConfig != nil {
		c, p := dp.DNSCacheConfig, spec.Child("dynamicProxy", "dnsCacheConfig")
		families := []string{"", "auto", "v4_only", "v6_only", "v4_preferred", "all"}
		if !slices.Contains(families, string(c.DNSLookupFamily)) {
			errs = append(errs, field.NotSupported(p.Child("dnsLookupFamily"), c.DNSLookupFamily, families[1:]))
		}
		errs = append(errs, minDuration(p.Child("dnsRefreshRate"), c.DNSRefreshRate, time.Millisecond)...)
		errs = append(errs, minDuration(p.Child("dnsMinRefreshRate"), c.DNSMinRefreshRate, time.Second)...)
		errs = append(errs, minDuration(p.Child("hostTTL"), c.HostTTL, time.Second)...)
		errs = append(errs, minDuration(p.Child("dnsQueryTimeout"), c.DNSQueryTimeout, time.Millisecond)...)
		if c.MaxHosts != nil && *c.MaxHosts < 1 {
			errs = append(errs, field.Invalid(p.Child("maxHosts"), *c.MaxHosts, "must be at least 1"))
		}
	}
	if hc := s.HealthCheck; hc != nil {
		errs = append(errs, validateHealthCheck(spec.Child("healthCheck"), hc)...)
	}
	return errs
}

func validateHealthCheck(p *field.Path, hc *HealthCheck) field.ErrorList {
	var errs field.ErrorList
	if (hc.HTTP == nil) == (hc.TCP == nil) {
		errs = append(errs, field.Invalid(p, "", "set exactly one of http or tcp"))
	}
	errs = append(errs, minDuration(p.Child("interval"), hc.Interval, 100*time.Millisecond)...)
	errs = append(errs, minDuration(p.Child("timeout"), hc.Timeout, time.Millisecond)...)
	if hc.Interval != nil && hc.Timeout != nil && hc.Timeout.Duration > hc.Interval.Duration {
		errs = append(errs, field.Invalid(p.Child("timeout"), hc.Timeout.Duration.String(), "must not be longer than interval ("+hc.Interval.Duration.String()+")"))
	}
	for name, v := range map[string]*int32{"healthyThreshold": hc.HealthyThreshold, "unhealthyThreshold": hc.UnhealthyThreshold} {
		if v != nil && (*v < 1 || *v > 100) {
			errs = append(errs, field.Invalid(p.Child(name), *v, "must be between 1 and 100"))
		}
	}
	if h := hc.HTTP; h != nil {
		hp := p.Child("http")
		if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
			errs = append(errs, field.Invalid(hp.Child("path"), h.Path, "must start with '/'"))
		}
		methods := []string{"", "GET", "HEAD", "POST", "OPTIONS"}
		if !slices.Contains(methods, h.Method) {
			errs = append(errs, field.NotSupported(hp.Child("method"), h.Method, methods[1:]))
		}
		for i, code := range h.ExpectedStatuses {
			if code < 100 || code > 599 {
				errs = append(errs, field.Invalid(hp.Child("expectedStatuses").Index(i), code, "must be an HTTP status code between 100 and 599"))
			}
		}
	}
	return errs
}

var proxyProviders = []string{"", string(ProxyProviderCloud), string(ProxyProviderKubernetes), string(ProxyProviderUnmanaged)}

// ValidateProxy checks a Proxy's spec.
func ValidateProxy(px *Proxy) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if !slices.Contains(proxyProviders, string(px.Spec.Provider)) {
		errs = append(errs, field.NotSupported(spec.Child("provider"), px.Spec.Provider, proxyProviders[1:]))
	}
	if sd := px.Spec.Shutdown; sd != nil {
		p := spec.Child("shutdown")
		errs = append(errs, minDuration(p.Child("drainTimeout"), sd.DrainTimeout, 0)...)
		errs = append(errs, minDuration(p.Child("minimumDrainTime"), sd.MinimumDrainTime, 0)...)
		if sd.DrainTimeout != nil && sd.MinimumDrainTime != nil && sd.MinimumDrainTime.Duration > sd.DrainTimeout.Duration {
			errs = append(errs, field.Invalid(p.Child("minimumDrainTime"), sd.MinimumDrainTime.Duration.String(),
				"must not be longer than drainTimeout ("+sd.DrainTimeout.Duration.String()+")"))
		}
	}
	if rl := px.Spec.RateLimit; rl != nil {
		errs = append(errs, validateProxyRateLimit(spec.Child("rateLimit"), rl)...)
	}
	if t := px.Spec.Telemetry; t != nil {
		errs = append(errs, validateTelemetry(spec.Child("telemetry"), t)...)
	}
	if h := px.Spec.HTTP; h != nil {
		errs = append(errs, validateProxyHTTP(spec.Child("http"), h)...)
	}
	return errs
}

// Bounds of ProxyHTTP's sizes.
const (
	MinRequestHeaderBytes = 1 << 10
	MaxRequestHeaderBytes = 1 << 20
	MaxRequestHeaders     = 1000
	MaxHTTP2Streams       = 10000
	MinHTTP2Window        = 65535
)

func validateProxyHTTP(p *field.Path, h *ProxyHTTP) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, minDuration(p.Child("idleTimeout"), h.IdleTimeout, time.Second)...)
	errs = append(errs, minDuration(p.Child("requestHeaderTimeout"), h.RequestHeaderTimeout, time.Second)...)
	errs = append(errs, minDuration(p.Child("requestBodyTimeout"), h.RequestBodyTimeout, time.Second)...)
	errs = append(errs, int32Range(p.Child("maxRequestHeaderBytes"), h.MaxRequestHeaderBytes, MinRequestHeaderBytes, MaxRequestHeaderBytes)...)
	errs = append(errs, int32Range(p.Child("maxRequestHeaders"), h.MaxRequestHeaders, 1, MaxRequestHeaders)...)
	if h2 := h.HTTP2; h2 != nil {
		p := p.Child("http2")
		errs = append(errs, int32Range(p.Child("maxConcurrentStreams"), h2.MaxConcurrentStreams, 1, MaxHTTP2Streams)...)
		errs = append(errs, int32Range(p.Child("initialStreamWindowSize"), h2.InitialStreamWindowSize, MinHTTP2Window, 1<<31-1)...)
		errs = append(errs, int32Range(p.Child("initialConnectionWindowSize"), h2.InitialConnectionWindowSize, MinHTTP2Window, 1<<31-1)...)
		if s, c := h2.InitialStreamWindowSize, h2.InitialConnectionWindowSize; s != nil && c != nil && *c >= MinHTTP2Window && *c < *s {
			errs = append(errs, field.Invalid(p.Child("initialConnectionWindowSize"), *c,
				fmt.Sprintf("must not be smaller than initialStreamWindowSize (%d): one stream could not use its window", *s)))
		}
		errs = append(errs, minDuration(p.Child("writeTimeout"), h2.WriteTimeout, time.Second)...)
	}
	return errs
}

func int32Range(p *field.Path, v *int32, lowest, highest int32) field.ErrorList {
	if v == nil || *v >= lowest && *v <= highest {
		return nil
	}
	return field.ErrorList{field.Invalid(p, *v, fmt.Sprintf("must be between %d and %d", lowest, highest))}
}

// MaxRedisDatabase is the highest Redis database number (Redis has 16 by default).
const MaxRedisDatabase = 15

func validateProxyRateLimit(p *field.Path, rl *ProxyRateLimit) field.ErrorList {
	var errs field.ErrorList
	r := rl.Redis
	if r == nil {
		return field.ErrorList{field.Required(p.Child("redis"), "name the Redis store: {address: HOST:PORT}, or remove rateLimit")}
	}
	rp := p.Child("redis")
	if r.Address == "" {
		errs = append(errs, field.Required(rp.Child("address"), "set host:port, e.g. redis.internal:6379"))
	} else if msg := hostPortError(r.Address); msg != "" {
		errs = append(errs, field.Invalid(rp.Child("address"), r.Address, msg))
	}
	if ref := r.PasswordSecretRef; ref != nil {
		sp := rp.Child("passwordSecretRef")
		if ref.Name == "" {
			errs = append(errs, field.Required(sp.Child("name"), "name the Secret holding the password"))
		}
		for _, msg := range validation.IsDNS1123Subdomain(ref.Name) {
			if ref.Name != "" {
				errs = append(errs, field.Invalid(sp.Child("name"), ref.Name, msg))
			}
		}
		if ref.Key != "" {
			for _, msg := range validation.IsConfigMapKey(ref.Key) {
				errs = append(errs, field.Invalid(sp.Child("key"), ref.Key, msg))
			}
		}
	}
	if r.Database < 0 || r.Database > MaxRedisDatabase {
		errs = append(errs, field.Invalid(rp.Child("database"), r.Database, fmt.Sprintf("must be between 0 and %d", MaxRedisDatabase)))
	}
	return errs
}

// hostPortError says what is wrong with a host:port address, or "".
func hostPortError(addr string) string {
	const want = "must be host:port, e.g. redis.internal:6379, 10.0.0.5:6379 or [2001:db8::5]:6379"
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return want
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "port must be a number between 1 and 65535"
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	if msgs := validation.IsDNS1123Subdomain(strings.TrimSuffix(host, ".")); len(msgs) > 0 {
		return "host must be an IP address or a DNS name: " + msgs[0]
	}
	return ""
}

func minDuration(p *field.Path, d *metav1.Duration, lowest time.Duration) field.ErrorList {
	if d == nil || d.Duration >= lowest {
		return nil
	}
	return field.ErrorList{field.Invalid(p, d.Duration.String(), fmt.Sprintf("must be at least %s", lowest))}
}
