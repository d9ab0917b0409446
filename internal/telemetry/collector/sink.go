package collector

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Signal names one kind of telemetry: the keys of a collector pipeline ("traces", "logs",
// "metrics"). Profiles are not carried.
type Signal string

// The signals a Collector carries.
const (
	Traces  Signal = "traces"
	Logs    Signal = "logs"
	Metrics Signal = "metrics"
)

// AllSignals lists every Signal in pipeline order; generated pipelines follow it.
var AllSignals = []Signal{Traces, Logs, Metrics}

// SinkKind says which backend a Sink exports to and so how its fields map to an exporter.
type SinkKind string

// The kinds of Sink. Every kind except OTLPGRPC becomes an `otlphttp` exporter.
const (
	// OTLPHTTP is any OTLP/HTTP endpoint: Endpoint is the base URL, /v1/<signal> is appended.
	OTLPHTTP SinkKind = "OTLPHTTP"
	// OTLPGRPC is any OTLP/gRPC endpoint: Endpoint is host:port (TLS) or http://host:port
	// (plaintext) or https://host:port.
	OTLPGRPC SinkKind = "OTLPGRPC"
	// Datadog is Datadog's agentless OTLP intake of Site, authenticated by APIKey.
	Datadog SinkKind = "Datadog"
	// GrafanaCloud is a Grafana Cloud OTLP gateway (Endpoint), basic auth InstanceID:APIKey.
	GrafanaCloud SinkKind = "GrafanaCloud"
	// Axiom is Axiom's OTLP intake (Region or Endpoint), APIKey as bearer token, one Dataset.
	Axiom SinkKind = "Axiom"
)

// Sink is one export target configured by a tenant, outside the collector YAML: a generic OTLP
// endpoint or a known backend (from a CloudMonitoringIntegration or the Proxy's third-party
// sinks). Each Sink becomes one exporter named otlphttp/apoxy-<Name> (otlp/apoxy-<Name> for
// OTLPGRPC) added to the pipelines of the signals it takes. Credentials stay out of errors,
// logs and Status.
type Sink struct {
	// Name identifies the sink in exporter names and Status (lowercase letters, digits, '-' and
	// '.'; at most 63 characters), e.g. the CloudMonitoringIntegration's name.
	Name string
	// Kind selects the mapping below.
	Kind SinkKind
	// Endpoint is the base URL for OTLPHTTP and GrafanaCloud (required), host:port or URL for
	// OTLPGRPC (required), and an optional override of the intake URL for Datadog and Axiom.
	Endpoint string
	// Headers are added to every export request. The credential headers a Kind sets win over
	// the same names here.
	Headers map[string]string
	// Compression is "" (the exporter's default, gzip), "gzip", "zstd", "snappy", "zlib",
	// "deflate" or "none".
	Compression string
	// Signals the sink takes; empty means every signal its Kind supports. Naming one the Kind
	// does not support is an error.
	Signals []Signal
	// Timeout bounds one export attempt; zero means 10 s.
	Timeout time.Duration

	// APIKey is the Datadog API key, the Grafana Cloud access-policy token, or the Axiom API
	// token.
	APIKey string
	// InstanceID is the Grafana Cloud instance (stack) ID, the basic-auth user.
	InstanceID string
	// Site is the Datadog site: datadoghq.com (default), datadoghq.eu, us3.datadoghq.com,
	// us5.datadoghq.com, ap1.datadoghq.com or ddog-gov.com.
	Site string
	// Dataset is the Axiom dataset the data lands in.
	Dataset string
	// Region is the Axiom edge deployment: "" or "us" (api.axiom.co) or "eu".
	Region string
}

// Defaults of the exporters generated for Sinks.
const (
	defaultSinkTimeout = 10 * time.Second
	// sinkQueueSize is the exporterhelper sending queue of a generated exporter, in requests
	// (batches of up to 8192 items from the batch processor).
	sinkQueueSize = 64
	// sinkWriteBuffer is the HTTP write buffer of a generated exporter's connections.
	sinkWriteBuffer = 32 << 10
	// sinkRetryMaxElapsed bounds the retries of one batch; a sink down for longer loses it.
	sinkRetryMaxElapsed = time.Minute
)

// datadogSites are the sites whose agentless OTLP intake is https://otlp.<site>.
var datadogSites = []string{"datadoghq.com", "datadoghq.eu", "us3.datadoghq.com", "us5.datadoghq.com", "ap1.datadoghq.com", "ddog-gov.com"}

// axiomRegions maps an Axiom edge deployment to its ingest base URL.
var axiomRegions = map[string]string{
	"":   "https://api.axiom.co",
	"us": "https://api.axiom.co",
	"eu": "https://eu-central-1.aws.edge.axiom.co",
}

// kindSignals are the signals each Kind can take.
var kindSignals = map[SinkKind][]Signal{
	OTLPHTTP:     AllSignals,
	OTLPGRPC:     AllSignals,
	GrafanaCloud: AllSignals,
	// Datadog's agentless intake takes logs, traces and metrics over OTLP/HTTP protobuf
	// (traces and metrics were in Preview when this was written; metrics must be delta).
	Datadog: AllSignals,
	// Axiom takes logs and traces, and metrics in public preview, each in a dataset of its
	// own type: a sink with several signals would send them all to one dataset.
	Axiom: AllSignals,
}

// sinkExporter is what a Sink compiles to: one exporter's ID, its raw configuration (the
// same map the YAML would give) and the signals whose pipelines it joins.
type sinkExporter struct {
	ID      string
	Config  map[string]any
	Signals []Signal
	// Secrets are the values to scrub from errors and logs.
	Secrets []string
}

// sinkName is the shape of Sink.Name: it becomes part of a component ID.
func validSinkName(name string) bool {
	if name == "" || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

var compressions = []string{"gzip", "zstd", "snappy", "zlib", "deflate", "none"}

// exporter maps the Sink to its exporter. It is pure: no network, no files. Errors name the
// sink and the field, never a credential.
func (s Sink) exporter() (sinkExporter, error) {
	fail := func(format string, args ...any) (sinkExporter, error) {
		return sinkExporter{}, fmt.Errorf("sink %q: %s", s.Name, fmt.Sprintf(format, args...))
	}
	if !validSinkName(s.Name) {
		return fail("name must be 1-63 lowercase letters, digits, '-' or '.'")
	}
	supported, ok := kindSignals[s.Kind]
	if !ok {
		return fail("unknown kind %q (want OTLPHTTP, OTLPGRPC, Datadog, GrafanaCloud or Axiom)", s.Kind)
	}
	signals := supported
	if len(s.Signals) > 0 {
		signals = nil
		for _, sig := range s.Signals {
			if !slices.Contains(supported, sig) {
				return fail("signal %q is not one %s takes", sig, s.Kind)
			}
			if !slices.Contains(signals, sig) {
				signals = append(signals, sig)
			}
		}
	}
	if s.Compression != "" && !slices.Contains(compressions, s.Compression) {
		return fail("compression %q is not one of %s", s.Compression, strings.Join(compressions, ", "))
	}
	if s.Timeout < 0 {
		return fail("timeout must not be negative")
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = defaultSinkTimeout
	}

	headers := map[string]any{}
	var secrets []string
	for k, v := range s.Headers {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") {
			return fail("header name %q is not a valid HTTP header name", k)
		}
		if strings.ContainsAny(v, "\r\n") {
			return fail("header %q: value has a line break", k)
		}
		headers[k] = v
		// Any header may carry a credential (Authorization, x-api-key, ...).
		secrets = append(secrets, v)
	}
	setHeader := func(name, value string) {
		for k := range headers {
			if strings.EqualFold(k, name) {
				delete(headers, k)
			}
		}
		headers[name] = value
		secrets = append(secrets, value)
	}

	typ := "otlphttp"
	var endpoint string
	switch s.Kind {
	case OTLPHTTP, GrafanaCloud:
		if s.Endpoint == "" {
			return fail("endpoint is required")
		}
		if err := checkHTTPURL(s.Endpoint); err != nil {
			return fail("endpoint: %v", err)
		}
		endpoint = s.Endpoint
		if s.Kind == GrafanaCloud {
			if s.InstanceID == "" || s.APIKey == "" {
				return fail("Grafana Cloud needs the instance ID and an API token")
			}
			cred := base64.StdEncoding.EncodeToString([]byte(s.InstanceID + ":" + s.APIKey))
			setHeader("Authorization", "Basic "+cred)
			secrets = append(secrets, s.APIKey)
		}
	case OTLPGRPC:
		typ = "otlp"
		if s.Endpoint == "" {
			return fail("endpoint is required")
		}
		if err := checkGRPCEndpoint(s.Endpoint); err != nil {
			return fail("endpoint: %v", err)
		}
		endpoint = s.Endpoint
	case Datadog:
		// Datadog's agentless OTLP intake (OTLP/HTTP protobuf only, no gRPC), authenticated by
		// the dd-api-key header; the host is otlp.<site> and the exporter appends
		// /v1/traces, /v1/logs and /v1/metrics:
		//   https://docs.datadoghq.com/opentelemetry/setup/otlp_ingest/logs/
		//   https://docs.datadoghq.com/opentelemetry/setup/otlp_ingest/traces/ (Preview)
		//   https://docs.datadoghq.com/opentelemetry/setup/intake_endpoint/otlp_metrics (Preview; delta temporality only)
		// e.g. https://otlp.datadoghq.com/v1/logs, https://otlp.us5.datadoghq.com/v1/metrics.
		// Some sites do not offer every signal yet; the intake answers 403/404 and Status shows it.
		site := s.Site
		if site == "" {
			site = "datadoghq.com"
		}
		if !slices.Contains(datadogSites, site) {
			return fail("unknown Datadog site %q (want one of %s)", site, strings.Join(datadogSites, ", "))
		}
		if s.APIKey == "" {
			return fail("Datadog needs an API key")
		}
		endpoint = "https://otlp." + site
		if s.Endpoint != "" {
			if err := checkHTTPURL(s.Endpoint); err != nil {
				return fail("endpoint: %v", err)
			}
			endpoint = s.Endpoint
		}
		setHeader("dd-api-key", s.APIKey)
	case Axiom:
		// Axiom's OTLP/HTTP intake on the edge deployment's domain, bearer token and dataset
		// header; metrics name their dataset in x-axiom-metrics-dataset:
		//   https://axiom.co/docs/send-data/opentelemetry
		//   https://axiom.co/docs/reference/edge-deployments (EU: eu-central-1.aws.edge.axiom.co)
		// Axiom wants a dedicated dataset per signal, so an Axiom sink takes one signal.
		base, ok := axiomRegions[s.Region]
		if !ok {
			return fail("unknown Axiom region %q (want us or eu)", s.Region)
		}
		if s.APIKey == "" || s.Dataset == "" {
			return fail("Axiom needs an API token and a dataset")
		}
		if len(signals) != 1 {
			return fail("Axiom keeps each signal in a dataset of its own: list exactly one signal (one sink per dataset)")
		}
		endpoint = base
		if s.Endpoint != "" {
			if err := checkHTTPURL(s.Endpoint); err != nil {
				return fail("endpoint: %v", err)
			}
			endpoint = s.Endpoint
		}
		setHeader("Authorization", "Bearer "+s.APIKey)
		secrets = append(secrets, s.APIKey)
		if signals[0] == Metrics {
			setHeader("x-axiom-metrics-dataset", s.Dataset)
		} else {
			setHeader("x-axiom-dataset", s.Dataset)
		}
	}

	cfg := map[string]any{
		"endpoint": endpoint,
		"timeout":  timeout.String(),
		// One consumer: a sink costs one goroutine per signal, and a slow sink fills only its
		// own queue (then drops, counted as failures) instead of stalling the others.
		"sending_queue": map[string]any{
			"enabled":       true,
			"num_consumers": 1,
			"queue_size":    sinkQueueSize,
		},
		"retry_on_failure": map[string]any{
			"enabled":          true,
			"max_elapsed_time": sinkRetryMaxElapsed.String(),
		},
	}
	if len(headers) > 0 {
		cfg["headers"] = headers
	}
	if s.Compression != "" {
		cfg["compression"] = s.Compression
	}
	if typ == "otlphttp" {
		// The exporter's default is a 512 KiB write buffer per connection (one connection per
		// signal): 1.5 MiB a sink, for batches that compress to tens of KiB.
		cfg["write_buffer_size"] = sinkWriteBuffer
	}
	if typ == "otlp" && strings.HasPrefix(endpoint, "http://") {
		// gRPC over plaintext: configgrpc takes TLS unless told otherwise.
		cfg["tls"] = map[string]any{"insecure": true}
	}
	return sinkExporter{
		ID:      typ + "/" + reservedPrefix + "-" + s.Name,
		Config:  cfg,
		Signals: signals,
		Secrets: secrets,
	}, nil
}

// reservedPrefix starts the names of the components we generate; YAML may not use it.
const reservedPrefix = "apoxy"

// checkHTTPURL accepts an absolute http or https URL with a host and no user info (a password
// in a URL would end up in errors and logs).
func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return errors.New("invalid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("scheme must be http or https")
	}
	if u.User != nil {
		return errors.New("credentials in the URL are not allowed: use headers")
	}
	return nil
}

// checkGRPCEndpoint accepts host:port, http://host:port or https://host:port. Other gRPC
// resolver schemes (unix:, dns:///, passthrough:) are refused: a unix socket is a file of the
// server, and the others bypass the host:port form users see.
func checkGRPCEndpoint(raw string) error {
	hostport := raw
	switch {
	case strings.HasPrefix(raw, "http://"):
		hostport = strings.TrimPrefix(raw, "http://")
	case strings.HasPrefix(raw, "https://"):
		hostport = strings.TrimPrefix(raw, "https://")
	case strings.Contains(raw, "://") || strings.HasPrefix(raw, "unix:"):
		return errors.New("only host:port, http://host:port or https://host:port are allowed")
	}
	hostport = strings.TrimSuffix(hostport, "/")
	u, err := url.Parse("grpc://" + hostport)
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("want host:port")
	}
	if u.Port() == "" {
		return errors.New("want host:port (the port is missing)")
	}
	return nil
}
