package v1alpha2

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateAccessLogFormat checks an Envoy command-operator format string; the API server
// sets it (to the data plane's formatter) so that the API types need not import it. Nil
// accepts every string.
var ValidateAccessLogFormat func(format string) error

// ValidateAccessLogJSON checks the JSON access-log fields (key to format string) likewise.
var ValidateAccessLogJSON func(fields map[string]string) error

func validateTelemetry(p *field.Path, t *ProxyTelemetry) field.ErrorList {
	var errs field.ErrorList
	if al := t.AccessLogs; al != nil {
		ap := p.Child("accessLogs")
		if al.Format != "" && len(al.JSON) > 0 {
			errs = append(errs, field.Forbidden(ap.Child("json"), "a text format and JSON fields cannot be combined: remove format for a JSON line, or json for a text line"))
		}
		if al.Format != "" && ValidateAccessLogFormat != nil {
			if err := ValidateAccessLogFormat(al.Format); err != nil {
				errs = append(errs, field.Invalid(ap.Child("format"), al.Format, err.Error()))
			}
		}
		if len(al.JSON) > 0 && ValidateAccessLogJSON != nil {
			if err := ValidateAccessLogJSON(al.JSON); err != nil {
				errs = append(errs, field.Invalid(ap.Child("json"), "", err.Error()))
			}
		}
		if f := al.Filter; f != nil {
			fp := ap.Child("filter")
			for i, c := range f.StatusCodes {
				if _, _, err := ParseStatusRange(c); err != nil {
					errs = append(errs, field.Invalid(fp.Child("statusCodes").Index(i), c, err.Error()))
				}
			}
			errs = append(errs, minDuration(fp.Child("minDuration"), f.MinDuration, 0)...)
			errs = append(errs, percentage(fp.Child("samplingRate"), f.SamplingRate)...)
		}
	}
	if c := t.ContentLogs; c != nil {
		cp := p.Child("contentLogs")
		if c.MaxBodyBytes != nil && (*c.MaxBodyBytes < 1 || *c.MaxBodyBytes > MaxContentLogBodyBytes) {
			errs = append(errs, field.Invalid(cp.Child("maxBodyBytes"), *c.MaxBodyBytes, fmt.Sprintf("must be between 1 and %d", MaxContentLogBodyBytes)))
		}
		for i, ct := range c.ContentTypes {
			if msg := mediaRangeError(ct); msg != "" {
				errs = append(errs, field.Invalid(cp.Child("contentTypes").Index(i), ct, msg))
			}
		}
		for i, path := range c.Paths {
			if !strings.HasPrefix(path, "/") {
				errs = append(errs, field.Invalid(cp.Child("paths").Index(i), path, "must be a path prefix starting with /"))
			}
		}
		for i, h := range c.RedactHeaders {
			for _, msg := range validation.IsHTTPHeaderName(h) {
				errs = append(errs, field.Invalid(cp.Child("redactHeaders").Index(i), h, msg))
			}
		}
	}
	if tr := t.Tracing; tr != nil {
		tp := p.Child("tracing")
		errs = append(errs, percentage(tp.Child("samplingRate"), tr.SamplingRate)...)
		for _, name := range sortedKeys(tr.Tags) {
			tag := tr.Tags[name]
			kp := tp.Child("tags").Key(name)
			n := 0
			for _, v := range []string{tag.Value, tag.Header, tag.Environment} {
				if v != "" {
					n++
				}
			}
			if n != 1 {
				errs = append(errs, field.Invalid(kp, tag, "set exactly one of value, header or environment"))
			}
			if tag.Header != "" {
				for _, msg := range validation.IsHTTPHeaderName(tag.Header) {
					errs = append(errs, field.Invalid(kp.Child("header"), tag.Header, msg))
				}
			}
			if tag.Default != "" && tag.Value != "" {
				errs = append(errs, field.Forbidden(kp.Child("default"), "a literal value needs no default"))
			}
		}
		seen := map[string]bool{}
		for i, pr := range tr.Propagation {
			if !slices.Contains(propagations, pr) {
				errs = append(errs, field.NotSupported(tp.Child("propagation").Index(i), pr, propagations))
			} else if seen[pr] {
				errs = append(errs, field.Duplicate(tp.Child("propagation").Index(i), pr))
			}
			seen[pr] = true
		}
	}
	if ref := t.OtelCollectorConfig; ref != nil {
		rp := p.Child("otelCollectorConfig")
		if ref.Kind != "" && ref.Kind != "ConfigMap" {
			errs = append(errs, field.NotSupported(rp.Child("kind"), ref.Kind, []string{"ConfigMap"}))
		}
		if ref.Group != "" {
			errs = append(errs, field.Invalid(rp.Child("group"), ref.Group, `a ConfigMap is in the core group: leave group empty`))
		}
		if ref.Name == "" {
			errs = append(errs, field.Required(rp.Child("name"), "name the ConfigMap holding the collector configuration (key config.yaml)"))
		}
	}
	if s := t.ThirdPartySinks; s != nil {
		sp := p.Child("thirdPartySinks")
		for _, k := range []struct {
			name    string
			key     *APIKey
			dataset bool
		}{{"axiomLogs", s.AxiomLogs, true}, {"axiomTraces", s.AxiomTraces, true}, {"datadogLogs", s.DatadogLogs, false}, {"datadogTraces", s.DatadogTraces, false}} {
			if k.key == nil {
				continue
			}
			kp := sp.Child(k.name)
			if (k.key.Key == "") == (len(k.key.KeyData) == 0) {
				errs = append(errs, field.Invalid(kp, "", "set exactly one of key or keyData"))
			}
			if k.dataset && k.key.Dataset == "" {
				errs = append(errs, field.Required(kp.Child("dataset"), "name the Axiom dataset to write to"))
			}
			if !k.dataset && k.key.Dataset != "" {
				errs = append(errs, field.Forbidden(kp.Child("dataset"), "only Axiom sinks take a dataset"))
			}
			if k.dataset && k.key.Site != "" {
				errs = append(errs, field.Forbidden(kp.Child("site"), "only Datadog sinks take a site"))
			}
			if !k.dataset && k.key.Site != "" && !slices.Contains(DatadogSites, k.key.Site) {
				errs = append(errs, field.NotSupported(kp.Child("site"), k.key.Site, DatadogSites))
			}
		}
		for i, sink := range s.OpenTelemetrySinks {
			ip := sp.Child("openTelemetrySinks").Index(i)
			errs = append(errs, validateOTLPTarget(ip, sink.Endpoint, sink.Protocol, sink.Compression)...)
			for _, h := range sortedKeys(sink.Headers) {
				for _, msg := range validation.IsHTTPHeaderName(h) {
					errs = append(errs, field.Invalid(ip.Child("headers").Key(h), h, msg))
				}
			}
			errs = append(errs, validateSignals(ip.Child("signals"), sink.Signals)...)
		}
	}
	return errs
}

var propagations = []string{PropagationTraceContext, PropagationB3, PropagationB3Multi}

// ValidateCloudMonitoringIntegration checks a CloudMonitoringIntegration's spec.
func ValidateCloudMonitoringIntegration(c *CloudMonitoringIntegration) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	s := &c.Spec
	set := 0
	for _, b := range []bool{s.DatadogCredentials != nil, s.GrafanaCredentials != nil, s.AxiomCredentials != nil, s.OTLP != nil} {
		if b {
			set++
		}
	}
	if set != 1 {
		errs = append(errs, field.Invalid(spec, "", fmt.Sprintf("set exactly one of datadogCredentials, grafanaCredentials, axiomCredentials or otlp (%d set)", set)))
	}
	for i, name := range s.ProxyRefs {
		for _, msg := range validation.IsDNS1123Subdomain(name) {
			errs = append(errs, field.Invalid(spec.Child("proxyRefs").Index(i), name, msg))
		}
	}
	errs = append(errs, validateSignals(spec.Child("signals"), s.Signals)...)
	if d := s.DatadogCredentials; d != nil {
		dp := spec.Child("datadogCredentials")
		errs = append(errs, validateSecretValue(dp.Child("apiKey"), d.APIKey)...)
		if d.Site != "" && !slices.Contains(DatadogSites, d.Site) {
			errs = append(errs, field.NotSupported(dp.Child("site"), d.Site, DatadogSites))
		}
	}
	if g := s.GrafanaCredentials; g != nil {
		gp := spec.Child("grafanaCredentials")
		errs = append(errs, validateSecretValue(gp.Child("apiKey"), g.APIKey)...)
		if g.InstanceID == "" {
			errs = append(errs, field.Required(gp.Child("instanceId"), "the stack's OTLP instance ID (Grafana Cloud portal, OpenTelemetry tile)"))
		} else if strings.ContainsAny(g.InstanceID, ": \t\r\n") {
			errs = append(errs, field.Invalid(gp.Child("instanceId"), g.InstanceID, "must not contain ':' or whitespace"))
		}
		if g.Endpoint == "" {
			errs = append(errs, field.Required(gp.Child("endpoint"), "the stack's OTLP endpoint, e.g. https://otlp-gateway-prod-eu-west-2.grafana.net/otlp"))
		} else if u, err := url.Parse(g.Endpoint); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, field.Invalid(gp.Child("endpoint"), g.Endpoint, "must be an https:// URL, e.g. https://otlp-gateway-prod-eu-west-2.grafana.net/otlp"))
		}
	}
	if a := s.AxiomCredentials; a != nil {
		ap := spec.Child("axiomCredentials")
		errs = append(errs, validateSecretValue(ap.Child("apiToken"), a.APIToken)...)
		if a.Region != "" && a.Region != AxiomRegionUS && a.Region != AxiomRegionEU {
			errs = append(errs, field.NotSupported(ap.Child("region"), a.Region, []string{AxiomRegionUS, AxiomRegionEU}))
		}
		if a.DatasetName == "" {
			errs = append(errs, field.Required(ap.Child("datasetName"), "name the Axiom dataset to write to"))
		}
	}
	if o := s.OTLP; o != nil {
		op := spec.Child("otlp")
		errs = append(errs, validateOTLPTarget(op, o.Endpoint, o.Protocol, o.Compression)...)
		for _, h := range sortedKeys(o.Headers) {
			hp := op.Child("headers").Key(h)
			for _, msg := range validation.IsHTTPHeaderName(h) {
				errs = append(errs, field.Invalid(hp, h, msg))
			}
			errs = append(errs, validateSecretValue(hp, o.Headers[h])...)
		}
	}
	return errs
}

func validateSecretValue(p *field.Path, v SecretValue) field.ErrorList {
	if (v.Value == "") == (v.SecretKeyRef == nil) {
		return field.ErrorList{field.Invalid(p, "", "set exactly one of value or secretKeyRef (a Secret in this namespace; it keeps the credential out of this object)")}
	}
	if ref := v.SecretKeyRef; ref != nil {
		var errs field.ErrorList
		rp := p.Child("secretKeyRef")
		if ref.Name == "" {
			errs = append(errs, field.Required(rp.Child("name"), "name the Secret"))
		}
		for _, msg := range validation.IsDNS1123Subdomain(ref.Name) {
			if ref.Name != "" {
				errs = append(errs, field.Invalid(rp.Child("name"), ref.Name, msg))
			}
		}
		if ref.Key != "" {
			for _, msg := range validation.IsConfigMapKey(ref.Key) {
				errs = append(errs, field.Invalid(rp.Child("key"), ref.Key, msg))
			}
		}
		return errs
	}
	if strings.ContainsAny(v.Value, "\r\n") {
		return field.ErrorList{field.Invalid(p.Child("value"), "[redacted]", "must not contain line breaks")}
	}
	return nil
}

func validateOTLPTarget(p *field.Path, endpoint, protocol, compression string) field.ErrorList {
	var errs field.ErrorList
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, field.Invalid(p.Child("endpoint"), endpoint, "must be an http:// or https:// URL with a host, e.g. https://otlp.example.com:4318"))
	}
	if protocol != "" && protocol != OTLPProtocolHTTP && protocol != OTLPProtocolGRPC {
		errs = append(errs, field.NotSupported(p.Child("protocol"), protocol, []string{OTLPProtocolHTTP, OTLPProtocolGRPC}))
	}
	if compression != "" && compression != "gzip" && compression != "none" {
		errs = append(errs, field.NotSupported(p.Child("compression"), compression, []string{"gzip", "none"}))
	}
	return errs
}

var signals = []string{string(SignalLogs), string(SignalTraces), string(SignalMetrics)}

func validateSignals(p *field.Path, list []TelemetrySignal) field.ErrorList {
	var errs field.ErrorList
	seen := map[TelemetrySignal]bool{}
	for i, s := range list {
		switch {
		case !slices.Contains(signals, string(s)):
			errs = append(errs, field.NotSupported(p.Index(i), s, signals))
		case seen[s]:
			errs = append(errs, field.Duplicate(p.Index(i), s))
		}
		seen[s] = true
	}
	return errs
}

func percentage(p *field.Path, v *int32) field.ErrorList {
	if v != nil && (*v < 0 || *v > 100) {
		return field.ErrorList{field.Invalid(p, *v, "must be a percentage between 0 and 100")}
	}
	return nil
}

// ParseStatusRange reads an access-log status filter: "404", a class "5xx" or a range
// "400-499", as the inclusive range it covers.
func ParseStatusRange(s string) (lo, hi int, err error) {
	const want = `must be a status ("404"), a class ("5xx") or a range ("400-499") between 100 and 599`
	code := func(v string) (int, bool) {
		n, err := strconv.Atoi(v)
		return n, err == nil && n >= 100 && n <= 599 && len(v) == 3
	}
	switch {
	case len(s) == 3 && (s[1:] == "xx" || s[1:] == "XX"):
		c, ok := code(s[:1] + "00")
		if !ok {
			return 0, 0, fmt.Errorf("%s", want)
		}
		return c, c + 99, nil
	case strings.Contains(s, "-"):
		a, b, _ := strings.Cut(s, "-")
		l, ok1 := code(a)
		h, ok2 := code(b)
		if !ok1 || !ok2 {
			return 0, 0, fmt.Errorf("%s", want)
		}
		if l > h {
			return 0, 0, fmt.Errorf("range %q is reversed: write %d-%d", s, h, l)
		}
		return l, h, nil
	default:
		c, ok := code(s)
		if !ok {
			return 0, 0, fmt.Errorf("%s", want)
		}
		return c, c, nil
	}
}

// mediaRangeError says what is wrong with a content-log media range ("type/subtype" or
// "type/*"), or "".
func mediaRangeError(s string) string {
	typ, sub, ok := strings.Cut(s, "/")
	if !ok || typ == "" || sub == "" || typ == "*" || strings.ContainsAny(s, " ;,") {
		return `must be a media type "type/subtype" or a whole type "type/*", without parameters`
	}
	return ""
}

// sortedKeys lists a map's keys in order, so errors come out in a stable order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// CollectorConfigKey is the ConfigMap key an otelCollectorConfig is read from.
const CollectorConfigKey = "config.yaml"

// CollectorConfigData picks the collector configuration out of a ConfigMap's data: the key
// "config.yaml", else its only key (ok false: neither).
func CollectorConfigData(data map[string]string) (key, config string, ok bool) {
	if v, ok := data[CollectorConfigKey]; ok {
		return CollectorConfigKey, v, true
	}
	if len(data) == 1 {
		for k, v := range data {
			return k, v, true
		}
	}
	return "", "", false
}
