package translate

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/status"
)

// Proxy condition types and reasons (Proxy status is the translator's).
const (
	// ProxyConditionAccepted says whether the Proxy's telemetry settings resolved: its
	// collector ConfigMap exists and parses, the Secrets its sinks name exist.
	ProxyConditionAccepted = "Accepted"

	ProxyReasonAccepted               = "Accepted"
	ProxyReasonCollectorConfigMissing = "CollectorConfigNotFound"
	ProxyReasonInvalidCollectorConfig = "InvalidCollectorConfig"
	ProxyReasonInvalidSink            = "InvalidSink"
)

// Defaults the data plane gets from the API's defaults when a Proxy omits a block: kept
// here too so a Proxy decoded without server defaults (tests, `apoxy translate`) behaves alike.
var (
	defaultContentTypes  = []string{"text/*", "application/json", "application/xml", "application/x-www-form-urlencoded", "application/graphql"}
	alwaysRedactedHeader = []string{"Authorization", "Cookie", "Proxy-Authorization", "Set-Cookie", "X-Api-Key"}
)

// proxyTelemetry holds one Proxy's translated telemetry and what its status says.
type proxyTelemetry struct {
	key   string
	tel   *ir.Telemetry
	used  bool
	cond  string // reason when not accepted
	msg   string
	sinks []sinkOrigin
}

// sinkOrigin remembers which CloudMonitoringIntegration became which sink.
type sinkOrigin struct {
	integration status.Key
	sink        string
}

// translateTelemetry builds the telemetry settings of every Proxy (routes name them once
// Gateways attach) and the defaults of Gateways without a Proxy.
func (t *translator) translateTelemetry() {
	t.telemetry = map[status.Key]*proxyTelemetry{}
	for _, p := range t.set.Proxies {
		t.telemetry[status.KeyOf(p.Namespace, p.Name)] = t.proxyTelemetry(p)
	}
}

// useTelemetry puts the telemetry of Gateway g, from its Proxy (nil: the project's
// defaults), into the snapshot and returns its key. Each Gateway has its own entry (metrics
// and logs say which Gateway served); the entries of Gateways sharing a Proxy share its
// settings and its collector pipeline.
func (t *translator) useTelemetry(g *gatewayCtx, p *corev1a2.Proxy) string {
	if t.snap.Telemetry == nil {
		t.snap.Telemetry = map[string]*ir.Telemetry{}
	}
	base := &ir.Telemetry{Project: t.opts.Scope, AccessLog: ir.AccessLog{SamplingRate: 100}}
	if p != nil {
		pt := t.telemetry[status.KeyOf(p.Namespace, p.Name)]
		pt.used = true
		base = pt.tel
	}
	tel := *base
	tel.Gateway = string(g.key)
	key := t.scoped(string(g.key))
	t.snap.Telemetry[key] = &tel
	return key
}

func (t *translator) proxyTelemetry(p *corev1a2.Proxy) *proxyTelemetry {
	pt := &proxyTelemetry{key: t.scoped(p.Namespace + "/" + p.Name)}
	tel := &ir.Telemetry{Project: t.opts.Scope, Proxy: p.Namespace + "/" + p.Name, AccessLog: ir.AccessLog{SamplingRate: 100}}
	pt.tel = tel
	spec := p.Spec.Telemetry
	if spec == nil {
		spec = &corev1a2.ProxyTelemetry{}
	}
	if al := spec.AccessLogs; al != nil {
		tel.AccessLog.Format = al.Format
		if len(al.JSON) > 0 {
			tel.AccessLog.JSON = maps.Clone(al.JSON)
		}
		if f := al.Filter; f != nil {
			for _, c := range f.StatusCodes {
				if lo, hi, err := corev1a2.ParseStatusRange(c); err == nil {
					tel.AccessLog.StatusCodes = append(tel.AccessLog.StatusCodes, ir.StatusRange{Min: lo, Max: hi})
				}
			}
			if f.MinDuration != nil {
				tel.AccessLog.MinDuration = ir.Duration(f.MinDuration.Duration)
			}
			keep := len(tel.AccessLog.StatusCodes) > 0 || tel.AccessLog.MinDuration > 0
			switch {
			case f.SamplingRate != nil:
				tel.AccessLog.SamplingRate = *f.SamplingRate
			case keep:
				tel.AccessLog.SamplingRate = 0
			}
		}
	}
	if c := spec.ContentLogs; c != nil && (c.RequestBodyEnabled || c.ResponseBodyEnabled) {
		cl := &ir.ContentLog{Request: c.RequestBodyEnabled, Response: c.ResponseBodyEnabled,
			MaxBodyBytes: int(deref(c.MaxBodyBytes, corev1a2.DefaultContentLogMaxBodyBytes)),
			ContentTypes: slices.Clone(c.ContentTypes), Paths: slices.Clone(c.Paths)}
		if len(cl.ContentTypes) == 0 {
			cl.ContentTypes = slices.Clone(defaultContentTypes)
		}
		redact := slices.Clone(alwaysRedactedHeader)
		for _, h := range c.RedactHeaders {
			redact = append(redact, http.CanonicalHeaderKey(h))
		}
		slices.Sort(redact)
		cl.RedactHeaders = slices.Compact(redact)
		tel.ContentLog = cl
	}
	if tr := spec.Tracing; tr != nil && tr.Enabled {
		it := &ir.Tracing{SamplingRate: deref(tr.SamplingRate, 100), ParentBased: tr.ParentBased == nil || *tr.ParentBased,
			Propagation: slices.Clone(tr.Propagation), ServiceName: cmp.Or(tr.ServiceName, corev1a2.DefaultTracingServiceName)}
		if len(it.Propagation) == 0 {
			it.Propagation = []string{corev1a2.PropagationTraceContext, corev1a2.PropagationB3}
		}
		for _, name := range slices.Sorted(maps.Keys(tr.Tags)) {
			tag := tr.Tags[name]
			it.Tags = append(it.Tags, ir.TracingTag{Name: name, Value: tag.Value, Header: tag.Header, Environment: tag.Environment, Default: tag.Default})
		}
		tel.Tracing = it
	}
	col := &ir.Collector{Name: pt.key}
	if ref := spec.OtelCollectorConfig; ref != nil {
		cfg, reason, msg := t.collectorConfig(p.Namespace, ref.Name)
		if reason != "" {
			pt.cond, pt.msg = reason, msg
		}
		col.Config = ir.SecretString(cfg)
	}
	t.thirdPartySinks(p, spec.ThirdPartySinks, col)
	t.integrationSinks(p, pt, col)
	if col.Config != "" || len(col.Sinks) > 0 {
		tel.Collector = col
	}
	return pt
}

// collectorConfig reads a Proxy's collector configuration from its ConfigMap. A version the
// validator refuses is reported and the last accepted one stays in force (Options.Memory).
func (t *translator) collectorConfig(ns, name string) (cfg, reason, msg string) {
	field := "spec.telemetry.otelCollectorConfig"
	cm, ok := t.configMaps[status.KeyOf(ns, name)]
	if !ok {
		return "", ProxyReasonCollectorConfigMissing, fmt.Sprintf("%s: ConfigMap %s/%s not found", field, ns, name)
	}
	key, data, ok := corev1a2.CollectorConfigData(cm.Data)
	if !ok {
		return "", ProxyReasonCollectorConfigMissing, fmt.Sprintf("%s: ConfigMap %s/%s has no key %q (nor exactly one key)", field, ns, name, corev1a2.CollectorConfigKey)
	}
	id := fmt.Sprintf("configmap:%s/%s#%s", ns, name, key)
	if v := t.opts.ValidateCollectorConfig; v != nil {
		if err := v([]byte(data)); err != nil {
			msg := fmt.Sprintf("%s: ConfigMap %s/%s key %s: %v", field, ns, name, key, err)
			if good, ok := t.opts.Memory.lastGood(id); ok {
				return string(good), ProxyReasonInvalidCollectorConfig, msg + " (the last accepted version stays in force)"
			}
			return "", ProxyReasonInvalidCollectorConfig, msg
		}
	}
	t.opts.Memory.remember(id, []byte(data))
	return data, "", ""
}

// thirdPartySinks turns spec.telemetry.thirdPartySinks into sinks.
func (t *translator) thirdPartySinks(p *corev1a2.Proxy, s *corev1a2.ThirdPartySinks, col *ir.Collector) {
	if s == nil {
		return
	}
	origin := ir.Origin{Kind: "Proxy", Namespace: p.Namespace, Name: p.Name}
	key := func(k *corev1a2.APIKey) ir.SecretString {
		if k.Key != "" {
			return ir.SecretString(k.Key)
		}
		return ir.SecretString(k.KeyData)
	}
	for _, e := range []struct {
		field, kind, signal string
		key                 *corev1a2.APIKey
	}{
		{"axiomLogs", ir.SinkAxiom, "logs", s.AxiomLogs}, {"axiomTraces", ir.SinkAxiom, "traces", s.AxiomTraces},
		{"datadogLogs", ir.SinkDatadog, "logs", s.DatadogLogs}, {"datadogTraces", ir.SinkDatadog, "traces", s.DatadogTraces},
	} {
		if e.key == nil {
			continue
		}
		sk := ir.Sink{Name: "thirdparty/" + e.field, Origin: origin, Kind: e.kind, APIKey: key(e.key), Signals: []string{e.signal}, Dataset: e.key.Dataset}
		if e.kind == ir.SinkDatadog {
			sk.Site = cmp.Or(e.key.Site, corev1a2.DefaultDatadogSite)
		} else {
			sk.Region = corev1a2.AxiomRegionUS
		}
		col.Sinks = append(col.Sinks, sk)
	}
	for i, o := range s.OpenTelemetrySinks {
		sk := ir.Sink{Name: fmt.Sprintf("thirdparty/openTelemetrySinks/%d", i), Origin: origin, Kind: ir.SinkOTLPHTTP,
			Endpoint: o.Endpoint, Compression: o.Compression, Signals: signalList(o.Signals)}
		if o.Protocol == corev1a2.OTLPProtocolGRPC {
			sk.Kind = ir.SinkOTLPGRPC
		}
		for k, v := range o.Headers {
			if sk.Headers == nil {
				sk.Headers = map[string]ir.SecretString{}
			}
			sk.Headers[k] = ir.SecretString(v)
		}
		col.Sinks = append(col.Sinks, sk)
	}
}

// signalList is a sink's signals, all three by default, in a fixed order.
func signalList(in []corev1a2.TelemetrySignal) []string {
	all := []string{string(corev1a2.SignalLogs), string(corev1a2.SignalMetrics), string(corev1a2.SignalTraces)}
	if len(in) == 0 {
		return all
	}
	var out []string
	for _, s := range all {
		if slices.Contains(in, corev1a2.TelemetrySignal(s)) {
			out = append(out, s)
		}
	}
	return out
}

// integrationSinks adds the enabled CloudMonitoringIntegrations of the Proxy's namespace that
// apply to it. One whose credentials do not resolve is left out and reported.
func (t *translator) integrationSinks(p *corev1a2.Proxy, pt *proxyTelemetry, col *ir.Collector) {
	for _, c := range t.set.CloudMonitoringIntegrations {
		if c.Namespace != p.Namespace || (c.Spec.Enabled != nil && !*c.Spec.Enabled) {
			continue
		}
		if len(c.Spec.ProxyRefs) > 0 && !slices.Contains(c.Spec.ProxyRefs, p.Name) {
			continue
		}
		sk, why := t.integrationSink(c)
		key := status.KeyOf(c.Namespace, c.Name)
		if why != "" {
			t.integrationErrors[key] = why
			continue
		}
		col.Sinks = append(col.Sinks, sk)
		pt.sinks = append(pt.sinks, sinkOrigin{integration: key, sink: sk.Name})
	}
}

// integrationSink turns one CloudMonitoringIntegration into a sink, or says why it cannot.
func (t *translator) integrationSink(c *corev1a2.CloudMonitoringIntegration) (ir.Sink, string) {
	s := &c.Spec
	sk := ir.Sink{Name: "cmi/" + c.Namespace + "/" + c.Name, Origin: ir.Origin{Kind: "CloudMonitoringIntegration", Namespace: c.Namespace, Name: c.Name}}
	var why string
	secret := func(field string, v corev1a2.SecretValue) ir.SecretString {
		if v.SecretKeyRef == nil {
			return ir.SecretString(v.Value)
		}
		data, msg := t.secretKey(c.Namespace, "spec."+field+".secretKeyRef", v.SecretKeyRef, corev1a2.DefaultSecretValueKey)
		if msg != "" && why == "" {
			why = msg
		}
		return ir.SecretString(strings.TrimSpace(string(data)))
	}
	switch {
	case s.DatadogCredentials != nil:
		d := s.DatadogCredentials
		sk.Kind, sk.Site, sk.APIKey = ir.SinkDatadog, cmp.Or(d.Site, corev1a2.DefaultDatadogSite), secret("datadogCredentials.apiKey", d.APIKey)
	case s.GrafanaCredentials != nil:
		g := s.GrafanaCredentials
		sk.Kind, sk.Endpoint, sk.InstanceID, sk.APIKey = ir.SinkGrafana, g.Endpoint, g.InstanceID, secret("grafanaCredentials.apiKey", g.APIKey)
	case s.AxiomCredentials != nil:
		a := s.AxiomCredentials
		sk.Kind, sk.Region, sk.Dataset, sk.APIKey = ir.SinkAxiom, cmp.Or(a.Region, corev1a2.AxiomRegionUS), a.DatasetName, secret("axiomCredentials.apiToken", a.APIToken)
	case s.OTLP != nil:
		o := s.OTLP
		sk.Kind, sk.Endpoint, sk.Compression = ir.SinkOTLPHTTP, o.Endpoint, o.Compression
		if o.Protocol == corev1a2.OTLPProtocolGRPC {
			sk.Kind = ir.SinkOTLPGRPC
		}
		for _, h := range slices.Sorted(maps.Keys(o.Headers)) {
			if sk.Headers == nil {
				sk.Headers = map[string]ir.SecretString{}
			}
			sk.Headers[h] = secret("otlp.headers["+h+"]", o.Headers[h])
		}
	default:
		return sk, "spec: no credentials (set one of datadogCredentials, grafanaCredentials, axiomCredentials or otlp)"
	}
	sk.Signals = signalList(s.Signals)
	return sk, why
}

// secretKey reads one key of a Secret in ns, or says what is missing (never its content).
func (t *translator) secretKey(ns, field string, ref *corev1a2.SecretKeyRef, defKey string) ([]byte, string) {
	key := cmp.Or(ref.Key, defKey)
	sec, ok := t.secrets[status.KeyOf(ns, ref.Name)]
	if !ok {
		return nil, fmt.Sprintf("%s: Secret %s/%s not found", field, ns, ref.Name)
	}
	if data, ok := sec.Data[key]; ok {
		return data, ""
	}
	if v, ok := sec.StringData[key]; ok {
		return []byte(v), ""
	}
	return nil, fmt.Sprintf("%s: Secret %s/%s has no key %q", field, ns, ref.Name, key)
}

// finishTelemetry reports every Proxy's status and records, for the controller, which sinks
// each CloudMonitoringIntegration became (its Connected condition comes from the data plane).
func (t *translator) finishTelemetry() {
	for _, p := range t.set.Proxies {
		pt := t.telemetry[status.KeyOf(p.Namespace, p.Name)]
		st := p.Status.DeepCopy()
		st.ObservedGeneration = p.Generation
		var conds []metav1.Condition
		ok, reason, msg := pt.cond == "", cmp.Or(pt.cond, ProxyReasonAccepted), cmp.Or(pt.msg, "telemetry settings resolved")
		c := status.Condition(ProxyConditionAccepted, ok, reason, msg, p.Generation, t.opts.Now)
		conds = append(conds, c)
		next := slices.Clone(st.Conditions)
		for _, c := range conds {
			status.Set(&next, c)
		}
		status.KeepTransitionTimes(next, p.Status.Conditions)
		st.Conditions = next
		t.report.Proxies[status.KeyOf(p.Namespace, p.Name)] = st
	}
	for _, c := range t.set.CloudMonitoringIntegrations {
		key := status.KeyOf(c.Namespace, c.Name)
		in := status.Integration{Generation: c.Generation, Disabled: c.Spec.Enabled != nil && !*c.Spec.Enabled, Error: t.integrationErrors[key]}
		for _, p := range t.set.Proxies {
			pt := t.telemetry[status.KeyOf(p.Namespace, p.Name)]
			if !pt.used {
				continue
			}
			for _, so := range pt.sinks {
				if so.integration == key {
					in.Sinks = append(in.Sinks, status.IntegrationSink{Collector: pt.key, Sink: so.sink})
				}
			}
		}
		t.report.Integrations[key] = in
	}
}

// telemetryRoutes gives routes the telemetry of the Gateway they attach to. Route values are
// shared between the Gateways a route attaches to; one already claimed by a Gateway with
// other telemetry is copied (once per telemetry).
func (t *translator) telemetryRoutes(routes []*ir.Route, g *gatewayCtx) []*ir.Route {
	var out []*ir.Route
	for i, r := range routes {
		switch r.Telemetry {
		case g.telemetry:
			continue
		case "":
			r.Telemetry = g.telemetry
			continue
		}
		if out == nil {
			out = slices.Clone(routes)
		}
		key := routeCopyKey{r, g.telemetry}
		c, ok := t.telemetryCopies[key]
		if !ok {
			cp := *r
			cp.Telemetry = g.telemetry
			c = &cp
			t.order[c] = t.order[r]
			if t.telemetryCopies == nil {
				t.telemetryCopies = map[routeCopyKey]*ir.Route{}
			}
			t.telemetryCopies[key] = c
		}
		out[i] = c
	}
	if out == nil {
		return routes
	}
	return out
}

type routeCopyKey struct {
	r   *ir.Route
	tel string
}

// telemetryL4 is telemetryRoutes for a TCP, UDP or TLS route.
func (t *translator) telemetryL4(r *ir.L4Route, g *gatewayCtx) *ir.L4Route {
	switch r.Telemetry {
	case g.telemetry:
		return r
	case "":
		r.Telemetry = g.telemetry
		return r
	}
	cp := *r
	cp.Telemetry = g.telemetry
	return &cp
}
