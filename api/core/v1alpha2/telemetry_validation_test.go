package v1alpha2

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestValidateProxyTelemetry(t *testing.T) {
	ValidateAccessLogFormat = func(f string) error {
		if strings.Contains(f, "%BOGUS%") {
			return errors.New(`unknown operator "%BOGUS%" at 0`)
		}
		return nil
	}
	defer func() { ValidateAccessLogFormat = nil }()
	tests := []struct {
		name string
		spec string
		want []string // field paths, in order
	}{
		{"empty", "telemetry: {}", nil},
		{"full", `telemetry:
  accessLogs: {format: '%REQ(:METHOD)%', filter: {statusCodes: [5xx, "429", 400-404], minDuration: 1s, samplingRate: 1}}
  contentLogs: {requestBodyEnabled: true, maxBodyBytes: 100, contentTypes: [text/*, application/json], paths: [/api], redactHeaders: [x-secret]}
  tracing: {enabled: true, samplingRate: 5, propagation: [b3multi, tracecontext], tags: {a: {value: x}, b: {header: x-b, default: none}, c: {environment: HOSTNAME}}}
  otelCollectorConfig: {kind: ConfigMap, name: col}
  thirdPartySinks:
    axiomLogs: {key: k, dataset: logs}
    datadogTraces: {key: k, site: datadoghq.eu}
    openTelemetrySinks: [{endpoint: 'https://otel.example.com', protocol: grpc, compression: gzip, signals: [traces, logs]}]`, nil},
		{"format and json", "telemetry: {accessLogs: {format: x, json: {a: b}}}", []string{"spec.telemetry.accessLogs.json"}},
		{"bad format", "telemetry: {accessLogs: {format: '%BOGUS%'}}", []string{"spec.telemetry.accessLogs.format"}},
		{"bad status filters", "telemetry: {accessLogs: {filter: {statusCodes: [6xx, '99', 500-400, abc, '5000'], samplingRate: 101, minDuration: -1s}}}",
			[]string{"spec.telemetry.accessLogs.filter.statusCodes[0]", "spec.telemetry.accessLogs.filter.statusCodes[1]", "spec.telemetry.accessLogs.filter.statusCodes[2]",
				"spec.telemetry.accessLogs.filter.statusCodes[3]", "spec.telemetry.accessLogs.filter.statusCodes[4]", "spec.telemetry.accessLogs.filter.minDuration", "spec.telemetry.accessLogs.filter.samplingRate"}},
		{"content logs", "telemetry: {contentLogs: {maxBodyBytes: 0, contentTypes: [json, 'text/html; charset=utf-8', '*/*'], paths: [api], redactHeaders: ['bad header']}}",
			[]string{"spec.telemetry.contentLogs.maxBodyBytes", "spec.telemetry.contentLogs.contentTypes[0]", "spec.telemetry.contentLogs.contentTypes[1]", "spec.telemetry.contentLogs.contentTypes[2]",
				"spec.telemetry.contentLogs.paths[0]", "spec.telemetry.contentLogs.redactHeaders[0]"}},
		{"content logs too large", "telemetry: {contentLogs: {maxBodyBytes: 2000000}}", []string{"spec.telemetry.contentLogs.maxBodyBytes"}},
		{"tracing", "telemetry: {tracing: {samplingRate: -1, propagation: [jaeger, b3, b3], tags: {both: {value: a, header: b}, none: {}, badh: {header: 'a b'}, litdef: {value: a, default: b}}}}",
			[]string{"spec.telemetry.tracing.samplingRate", "spec.telemetry.tracing.tags[badh].header", "spec.telemetry.tracing.tags[both]", "spec.telemetry.tracing.tags[litdef].default",
				"spec.telemetry.tracing.tags[none]", "spec.telemetry.tracing.propagation[0]", "spec.telemetry.tracing.propagation[2]"}},
		{"collector ref", "telemetry: {otelCollectorConfig: {kind: Secret, group: v1, name: ''}}",
			[]string{"spec.telemetry.otelCollectorConfig.kind", "spec.telemetry.otelCollectorConfig.group", "spec.telemetry.otelCollectorConfig.name"}},
		{"sinks", `telemetry:
  thirdPartySinks:
    axiomLogs: {key: k}
    axiomTraces: {key: k, keyData: aw==, dataset: d, site: datadoghq.com}
    datadogLogs: {key: k, dataset: d, site: example.com}
    openTelemetrySinks: [{endpoint: 'otel.example.com', protocol: thrift, compression: zstd, headers: {'bad h': x}, signals: [profiles, logs, logs]}]`,
			[]string{"spec.telemetry.thirdPartySinks.axiomLogs.dataset", "spec.telemetry.thirdPartySinks.axiomTraces", "spec.telemetry.thirdPartySinks.axiomTraces.site",
				"spec.telemetry.thirdPartySinks.datadogLogs.dataset", "spec.telemetry.thirdPartySinks.datadogLogs.site",
				"spec.telemetry.thirdPartySinks.openTelemetrySinks[0].endpoint", "spec.telemetry.thirdPartySinks.openTelemetrySinks[0].protocol",
				"spec.telemetry.thirdPartySinks.openTelemetrySinks[0].compression", "spec.telemetry.thirdPartySinks.openTelemetrySinks[0].headers[bad h]",
				"spec.telemetry.thirdPartySinks.openTelemetrySinks[0].signals[0]", "spec.telemetry.thirdPartySinks.openTelemetrySinks[0].signals[2]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &Proxy{}
			if err := yaml.UnmarshalStrict([]byte(tc.spec), &p.Spec); err != nil {
				t.Fatal(err)
			}
			SetDefaultsProxy(p)
			var got []string
			for _, e := range ValidateProxy(p) {
				got = append(got, e.Field)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors on %v, want %v: %v", got, tc.want, ValidateProxy(p))
			}
		})
	}
}

func TestProxyTelemetryDefaults(t *testing.T) {
	p := &Proxy{}
	if err := yaml.UnmarshalStrict([]byte("telemetry: {tracing: {enabled: true}, contentLogs: {responseBodyEnabled: true}, otelCollectorConfig: {name: c}}"), &p.Spec); err != nil {
		t.Fatal(err)
	}
	SetDefaultsProxy(p)
	tr := p.Spec.Telemetry.Tracing
	if *tr.SamplingRate != 100 || !*tr.ParentBased || !reflect.DeepEqual(tr.Propagation, []string{"tracecontext", "b3"}) || tr.ServiceName != "apoxy-gateway" {
		t.Errorf("tracing defaults: %+v", tr)
	}
	if *p.Spec.Telemetry.ContentLogs.MaxBodyBytes != 4096 || p.Spec.Telemetry.OtelCollectorConfig.Kind != "ConfigMap" {
		t.Errorf("content log / collector defaults: %+v %+v", p.Spec.Telemetry.ContentLogs, p.Spec.Telemetry.OtelCollectorConfig)
	}
}

func TestValidateCloudMonitoringIntegration(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want []string
	}{
		{"datadog inline", "datadogCredentials: {apiKey: {value: k}}", nil},
		{"datadog secret eu", "datadogCredentials: {apiKey: {secretKeyRef: {name: dd}}, site: datadoghq.eu}\nsignals: [logs, traces]", nil},
		{"grafana", "grafanaCredentials: {apiKey: {value: k}, instanceId: '123', endpoint: 'https://otlp-gateway-prod-eu-west-2.grafana.net/otlp'}", nil},
		{"axiom", "axiomCredentials: {apiToken: {value: k}, region: eu, datasetName: logs}", nil},
		{"otlp", "otlp: {endpoint: 'http://collector:4318', headers: {authorization: {secretKeyRef: {name: s, key: token}}}}\nproxyRefs: [default]", nil},
		{"none", "{}", []string{"spec"}},
		{"two", "otlp: {endpoint: 'http://c:4318'}\naxiomCredentials: {apiToken: {value: k}, datasetName: d}", []string{"spec"}},
		{"datadog bad", "datadogCredentials: {apiKey: {}, site: datadoghq.org}", []string{"spec.datadogCredentials.apiKey", "spec.datadogCredentials.site"}},
		{"datadog both", "datadogCredentials: {apiKey: {value: k, secretKeyRef: {name: s}}}", []string{"spec.datadogCredentials.apiKey"}},
		{"grafana bad", "grafanaCredentials: {apiKey: {secretKeyRef: {name: 'Bad_Name'}}, instanceId: 'a:b', endpoint: 'http://grafana'}",
			[]string{"spec.grafanaCredentials.apiKey.secretKeyRef.name", "spec.grafanaCredentials.instanceId", "spec.grafanaCredentials.endpoint"}},
		{"grafana missing", "grafanaCredentials: {apiKey: {value: k}}", []string{"spec.grafanaCredentials.instanceId", "spec.grafanaCredentials.endpoint"}},
		{"axiom bad", "axiomCredentials: {apiToken: {value: \"a\\nb\"}, region: asia}", []string{"spec.axiomCredentials.apiToken.value", "spec.axiomCredentials.region", "spec.axiomCredentials.datasetName"}},
		{"otlp bad", "otlp: {endpoint: 'ftp://x', protocol: udp, headers: {'a b': {value: x}}}\nsignals: [metrics, metrics]\nproxyRefs: ['UPPER']",
			[]string{"spec.proxyRefs[0]", "spec.signals[1]", "spec.otlp.endpoint", "spec.otlp.protocol", "spec.otlp.headers[a b]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &CloudMonitoringIntegration{}
			if err := yaml.UnmarshalStrict([]byte(tc.spec), &c.Spec); err != nil {
				t.Fatal(err)
			}
			SetDefaultsCloudMonitoringIntegration(c)
			var got []string
			for _, e := range ValidateCloudMonitoringIntegration(c) {
				got = append(got, e.Field)
				if strings.Contains(e.Error(), "\nb") {
					t.Errorf("error shows a credential: %v", e)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors on %v, want %v: %v", got, tc.want, ValidateCloudMonitoringIntegration(c))
			}
		})
	}
}

// FuzzProxyTelemetry: any telemetry spec that decodes can be defaulted and validated without
// panicking, and defaulting is idempotent.
func FuzzProxyTelemetry(f *testing.F) {
	f.Add("telemetry: {accessLogs: {filter: {statusCodes: [5xx]}}}")
	f.Add("telemetry: {tracing: {enabled: true, tags: {a: {header: x}}}}")
	f.Add("telemetry: {thirdPartySinks: {openTelemetrySinks: [{endpoint: 'http://x'}]}}")
	f.Fuzz(func(t *testing.T, in string) {
		p := &Proxy{}
		if yaml.UnmarshalStrict([]byte(in), &p.Spec) != nil {
			return
		}
		SetDefaultsProxy(p)
		once := p.DeepCopy()
		SetDefaultsProxy(p)
		if !reflect.DeepEqual(once, p) {
			t.Fatalf("defaulting is not idempotent")
		}
		_ = ValidateProxy(p)
	})
}
