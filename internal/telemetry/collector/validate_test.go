package collector_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/telemetry/collector"
)

// pipelineWith is a valid configuration around one exporter (or, with exporter "", the
// given sections as they are).
func pipelineWith(exporters, extra string) string {
	return `
receivers:
  otlp:
exporters:
` + exporters + `
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [x]
` + extra
}

func TestValidateRefuses(t *testing.T) {
	fileDir := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(fileDir, "escape")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		yaml string
		dir  string
		want []string // each must be one of the problems
	}{
		{
			name: "hostmetrics receiver",
			yaml: "receivers:\n  hostmetrics:\n    scrapers: {cpu: {}}\n" + strings.TrimPrefix(pipelineWith("  debug/x:\n", ""), "\nreceivers:\n  otlp:\n"),
			want: []string{`receivers.hostmetrics: receiver type "hostmetrics" is refused: a project's collector runs inside the gateway and takes telemetry only from it; declare an "otlp" receiver (the gateway feeds it in-process)`},
		},
		{
			name: "prometheus receiver",
			yaml: `
receivers:
  prometheus:
    config:
      scrape_configs: [{job_name: x, static_configs: [{targets: ["10.0.0.1:9100"]}]}]
exporters:
  debug:
service:
  pipelines:
    metrics:
      receivers: [prometheus]
      exporters: [debug]
`,
			want: []string{
				`receivers.prometheus: receiver type "prometheus" is refused: a project's collector runs inside the gateway and takes telemetry only from it; declare an "otlp" receiver (the gateway feeds it in-process)`,
			},
		},
		{
			name: "undefined exporter",
			yaml: `
receivers:
  otlp:
exporters:
  debug:
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug, jaeger]
`,
			want: []string{`service.pipelines.traces.exporters[1]: "jaeger" is not defined`},
		},
		{
			name: "undefined processor",
			yaml: pipelineWith("  debug/x:\n", "") + "      processors: [batch]\n",
			want: []string{`service.pipelines.traces.processors[0]: "batch" is not defined`},
		},
		{
			name: "invalid URL",
			yaml: strings.ReplaceAll(pipelineWith("  otlphttp/x:\n    endpoint: \"ht!tp://\"\n", ""), "[x]", "[otlphttp/x]"),
			want: []string{`exporters.otlphttp/x.endpoint: "ht!tp://": invalid URL`},
		},
		{
			name: "grpc unix socket",
			yaml: strings.ReplaceAll(pipelineWith("  otlp/x:\n    endpoint: unix:///run/apoxy.sock\n", ""), "[x]", "[otlp/x]"),
			want: []string{`exporters.otlp/x.endpoint: "unix:///run/apoxy.sock": only host:port, http://host:port or https://host:port are allowed`},
		},
		{
			name: "unknown exporter type",
			yaml: `
receivers:
  otlp:
exporters:
  kafka:
    brokers: [localhost:9092]
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [kafka]
`,
			want: []string{
				`exporters.kafka: unknown exporter type "kafka" (supported: debug, file, otlp, otlp_grpc, otlp_http, otlphttp, prometheusremotewrite)`,
			},
		},
		{
			name: "unknown processor type",
			yaml: "processors:\n  transform:\n    trace_statements: []\n" + strings.ReplaceAll(pipelineWith("  debug/x:\n", ""), "[x]", "[debug/x]"),
			want: []string{`processors.transform: unknown processor type "transform" (supported: batch, memory_limiter)`},
		},
		{
			name: "file path escapes with ..",
			dir:  fileDir,
			yaml: strings.ReplaceAll(pipelineWith("  file/x:\n    path: ../../etc/cron.d/x\n", ""), "[x]", "[file/x]"),
			want: []string{`exporters.file/x.path: "../../etc/cron.d/x": must not contain ".."`},
		},
		{
			name: "file path absolute",
			dir:  fileDir,
			yaml: strings.ReplaceAll(pipelineWith("  file/x:\n    path: /etc/passwd\n", ""), "[x]", "[file/x]"),
			want: []string{`exporters.file/x.path: "/etc/passwd": must be relative to the project's file directory`},
		},
		{
			name: "file path through a symlink out",
			dir:  fileDir,
			yaml: strings.ReplaceAll(pipelineWith("  file/x:\n    path: escape/traces.json\n", ""), "[x]", "[file/x]"),
			want: []string{`exporters.file/x.path: "escape/traces.json": leads out of the project's file directory through a symlink`},
		},
		{
			name: "file exporter without a directory",
			yaml: strings.ReplaceAll(pipelineWith("  file/x:\n    path: traces.json\n", ""), "[x]", "[file/x]"),
			want: []string{`exporters.file/x.path: "traces.json": the file exporter is not available here (no directory is set aside for project files)`},
		},
		{
			name: "environment reference",
			yaml: strings.ReplaceAll(pipelineWith("  otlphttp/x:\n    endpoint: https://api.honeycomb.io\n    headers:\n      x-honeycomb-team: ${env:HONEYCOMB_KEY}\n", ""), "[x]", "[otlphttp/x]"),
			want: []string{`exporters.otlphttp/x.headers.x-honeycomb-team: "${env:HONEYCOMB_KEY}": ${...} references are not expanded here (they would read the server's environment or files): write the value itself`},
		},
		{
			name: "tls file",
			yaml: strings.ReplaceAll(pipelineWith("  otlp/x:\n    endpoint: collector.example.com:4317\n    tls:\n      ca_file: /etc/apoxy/ca.pem\n", ""), "[x]", "[otlp/x]"),
			want: []string{`exporters.otlp/x.tls.ca_file: refused: it reads a file of the server; inline the PEM instead (ca_pem, cert_pem, key_pem)`},
		},
		{
			name: "authenticator",
			yaml: strings.ReplaceAll(pipelineWith("  otlphttp/x:\n    endpoint: https://example.com\n    auth:\n      authenticator: basicauth/client\n", ""), "[x]", "[otlphttp/x]"),
			want: []string{`exporters.otlphttp/x.auth: refused: authenticators are extensions, which are not run: put the credential in headers`},
		},
		{
			name: "persistent queue",
			yaml: strings.ReplaceAll(pipelineWith("  otlphttp/x:\n    endpoint: https://example.com\n    sending_queue:\n      storage: file_storage\n", ""), "[x]", "[otlphttp/x]"),
			want: []string{`exporters.otlphttp/x.sending_queue.storage: refused: persistent queues need a storage extension, which is not run`},
		},
		{
			name: "remote write WAL",
			yaml: `
receivers:
  otlp:
exporters:
  prometheusremotewrite:
    endpoint: https://prometheus.example.com/api/v1/write
    wal:
      directory: /var/lib/wal
service:
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheusremotewrite]
`,
			want: []string{`exporters.prometheusremotewrite.wal: refused: a write-ahead log writes to the server's disk`},
		},
		{
			name: "remote write takes metrics only",
			yaml: `
receivers:
  otlp:
exporters:
  prometheusremotewrite:
    endpoint: https://prometheus.example.com/api/v1/write
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [prometheusremotewrite]
`,
			want: []string{`service.pipelines.traces.exporters[0]: "prometheusremotewrite" does not take traces`},
		},
		{
			name: "debug to stdout",
			yaml: strings.ReplaceAll(pipelineWith("  debug/x:\n    use_internal_logger: false\n", ""), "[x]", "[debug/x]"),
			want: []string{`exporters.debug/x.use_internal_logger: refused: the debug exporter writes only to the server log`},
		},
		{
			name: "unknown key",
			yaml: strings.ReplaceAll(pipelineWith("  otlphttp/x:\n    endpoint: https://example.com\n    endpiont: https://example.com\n", ""), "[x]", "[otlphttp/x]"),
			want: []string{`exporters.otlphttp/x: unknown keys: endpiont`},
		},
		{
			name: "component validation",
			yaml: "processors:\n  memory_limiter:\n    limit_mib: 100\n" + strings.ReplaceAll(pipelineWith("  debug/x:\n", ""), "[x]", "[debug/x]"),
			want: []string{`processors.memory_limiter: 'check_interval' must be greater than zero`},
		},
		{
			name: "bad YAML",
			yaml: "receivers:\n  otlp:\n exporters: [",
			want: []string{`invalid YAML: line 2: did not find expected key`},
		},
		{
			name: "reserved name",
			yaml: strings.ReplaceAll(pipelineWith("  debug/apoxy-x:\n", ""), "[x]", "[debug/apoxy-x]"),
			want: []string{`exporters.debug/apoxy-x: names starting with "apoxy" are reserved for generated components`},
		},
		{
			name: "connector",
			yaml: "connectors:\n  spanmetrics:\n" + strings.ReplaceAll(pipelineWith("  debug/x:\n", ""), "[x]", "[debug/x]"),
			want: []string{`connectors.spanmetrics: connectors are not supported`},
		},
		{
			name: "profiles",
			yaml: `
receivers:
  otlp:
exporters:
  debug:
service:
  pipelines:
    profiles:
      receivers: [otlp]
      exporters: [debug]
`,
			want: []string{`service.pipelines.profiles: signal "profiles" is not supported (traces, logs, metrics)`},
		},
		{
			name: "no pipelines",
			yaml: "receivers:\n  otlp:\nexporters:\n  debug:\n",
			want: []string{`service.pipelines: at least one pipeline is required`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			begin := time.Now()
			goroutines := runtime.NumGoroutine()
			err := collector.Validate([]byte(tc.yaml), tc.dir)
			if took := time.Since(begin); took > 100*time.Millisecond {
				t.Errorf("Validate took %v", took)
			}
			if n := runtime.NumGoroutine(); n > goroutines {
				t.Errorf("Validate left %d goroutines", n-goroutines)
			}
			var ce *collector.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Validate: %v, want a ConfigError", err)
			}
			for _, w := range tc.want {
				found := false
				for _, p := range ce.Problems {
					if p == w {
						found = true
					}
				}
				if !found {
					t.Errorf("problem\n  %s\nnot among\n  %s", w, strings.Join(ce.Problems, "\n  "))
				}
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	dir := t.TempDir()
	for name, yaml := range map[string]string{
		"empty":    "",
		"comments": "# nothing yet\n",
		"user":     strings.ReplaceAll(userYAML, "ENDPOINT", "https://api.honeycomb.io"),
		"file":     strings.ReplaceAll(pipelineWith("  file/x:\n    path: ./sub/traces.json\n    rotation:\n      max_megabytes: 10\n", ""), "[x]", "[file/x]"),
		"aliases": `
receivers:
  otlp:
exporters:
  otlp_grpc:
    endpoint: ingest.example.com:4317
    tls:
      ca_pem: "-----BEGIN CERTIFICATE-----"
  otlp_http:
    endpoint: https://ingest.example.com
  prometheusremotewrite:
    endpoint: https://prometheus.example.com/api/v1/write
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp_grpc, otlp_http]
    metrics:
      receivers: [otlp]
      exporters: [prometheusremotewrite]
`,
	} {
		if err := collector.Validate([]byte(yaml), dir); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSinkErrorsKeepSecrets(t *testing.T) {
	const key = "dd-secret-api-key-123"
	for _, s := range []collector.Sink{
		{Name: "dd", Kind: collector.Datadog, Site: "datadoghq.moon", APIKey: key},
		{Name: "gc", Kind: collector.GrafanaCloud, Endpoint: "https://user:" + key + "@otlp.grafana.net/otlp", InstanceID: "1", APIKey: key},
		{Name: "ax", Kind: collector.Axiom, APIKey: key, Dataset: "d", Signals: []collector.Signal{collector.Logs, collector.Traces}},
		{Name: "Bad Name", Kind: collector.OTLPHTTP, Endpoint: "https://x", Headers: map[string]string{"Authorization": key}},
	} {
		err := collector.ValidateSinks([]collector.Sink{s})
		if err == nil {
			t.Errorf("%s: no error", s.Name)
			continue
		}
		if strings.Contains(err.Error(), key) {
			t.Errorf("%s: the key is in the error: %v", s.Name, err)
		}
		t.Logf("%s: %v", s.Name, err)
	}
}

// FuzzValidate: whatever the YAML, Validate returns (an error or nil) and never panics.
func FuzzValidate(f *testing.F) {
	f.Add([]byte(strings.ReplaceAll(userYAML, "ENDPOINT", "https://example.com")))
	f.Add([]byte(pipelineWith("  otlphttp/x:\n    endpoint: \"ht!tp://\"\n", "")))
	f.Add([]byte(pipelineWith("  file/x:\n    path: ../x\n", "")))
	f.Add([]byte("receivers:\n  hostmetrics:\n"))
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("exporters:\n  otlp:\n    endpoint: [1, {2: 3}]\n    tls: {insecure: yes}\n"))
	f.Add([]byte("processors:\n  batch:\n    timeout: -1s\n  memory_limiter:\n    check_interval: 1s\n    limit_percentage: 400\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, yaml []byte) {
		_, _ = collector.ValidateWithWarnings(yaml, dir)
	})
}
