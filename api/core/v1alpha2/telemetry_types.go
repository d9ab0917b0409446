package v1alpha2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProxyTelemetry configures what a data plane reports about the traffic it serves: access
// logs (always on), content logs, traces, and where they go (an OpenTelemetry Collector
// configuration, third-party sinks; CloudMonitoringIntegration objects add more sinks).
type ProxyTelemetry struct {
	// +optional
	AccessLogs *AccessLogs `json:"accessLogs,omitempty"`
	// +optional
	ContentLogs *ContentLogs `json:"contentLogs,omitempty"`
	// +optional
	Tracing *Tracing `json:"tracing,omitempty"`
	// OtelCollectorConfig names a ConfigMap in the Proxy's namespace whose key "config.yaml"
	// (or its only key) holds an OpenTelemetry Collector configuration, as written for the
	// upstream collector. Its pipelines receive the Proxy's logs, traces and metrics: an `otlp`
	// receiver stands for this data plane's own telemetry (its endpoints are not opened).
	// +optional
	OtelCollectorConfig *LocalObjectReference `json:"otelCollectorConfig,omitempty"`
	// +optional
	ThirdPartySinks *ThirdPartySinks `json:"thirdPartySinks,omitempty"`
}

// AccessLogs configures the per-request access log. Access logs cannot be disabled; a
// filter can make them sparse.
type AccessLogs struct {
	// JSON adds fields to the JSON access log, or replaces default ones; values are Envoy
	// command operators such as "%REQ(:METHOD)%" mixed with text. A field given "" is
	// removed from the line.
	// +optional
	JSON map[string]string `json:"json,omitempty"`
	// Format switches to a text line in Envoy command-operator format, e.g.
	// `%START_TIME% %REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %DURATION%ms`. It cannot be
	// combined with json.
	// +optional
	Format string `json:"format,omitempty"`
	// Filter chooses which exchanges are logged.
	// +optional
	Filter *AccessLogFilter `json:"filter,omitempty"`
}

// AccessLogFilter chooses which exchanges are logged. Without statusCodes and minDuration,
// samplingRate percent of all exchanges are logged (default 100). With either, the exchanges
// they match are always logged, and samplingRate percent of the others (default 0).
type AccessLogFilter struct {
	// StatusCodes are statuses always logged: "404", a class "5xx", or a range "400-499".
	// +optional
	// +listType=atomic
	StatusCodes []string `json:"statusCodes,omitempty"`
	// MinDuration logs every exchange lasting at least this long.
	// +optional
	MinDuration *metav1.Duration `json:"minDuration,omitempty"`
	// SamplingRate is the percentage (0-100) of the other exchanges logged.
	// +optional
	SamplingRate *int32 `json:"samplingRate,omitempty"`
}

// ContentLogs captures request and response bodies into the access log. Off by default.
type ContentLogs struct {
	// +optional
	RequestBodyEnabled bool `json:"requestBodyEnabled,omitempty"`
	// +optional
	ResponseBodyEnabled bool `json:"responseBodyEnabled,omitempty"`
	// MaxBodyBytes is the most bytes captured from each body (default 4096, at most 1 MiB);
	// a longer body is logged cut, and marked truncated.
	// +optional
	MaxBodyBytes *int32 `json:"maxBodyBytes,omitempty"`
	// ContentTypes are the media types whose bodies are captured: "application/json", or a
	// whole type "text/*". Defaults: text/*, application/json, application/xml,
	// application/x-www-form-urlencoded, application/graphql.
	// +optional
	// +listType=atomic
	ContentTypes []string `json:"contentTypes,omitempty"`
	// Paths are path prefixes whose exchanges are captured (default: all).
	// +optional
	// +listType=atomic
	Paths []string `json:"paths,omitempty"`
	// RedactHeaders are header names whose values never reach the content log (they are
	// logged as "[redacted]"). Authorization, Proxy-Authorization, Cookie, Set-Cookie and
	// X-Api-Key are always redacted.
	// +optional
	// +listType=atomic
	RedactHeaders []string `json:"redactHeaders,omitempty"`
}

// Tracing configures distributed tracing (OpenTelemetry). Off by default.
type Tracing struct {
	// +optional
	Enabled bool `json:"enabled,omitempty"`
	// Tags adds span attributes, each from a literal value, a request header or an
	// environment variable of the data plane.
	// +optional
	Tags map[string]TracingTag `json:"tags,omitempty"`
	// SamplingRate is the percentage (0-100) of new traces sampled; defaults to 100.
	// +optional
	SamplingRate *int32 `json:"samplingRate,omitempty"`
	// ParentBased follows the sampling decision of an incoming trace context when there is
	// one (the default); false samples every request by samplingRate alone.
	// +optional
	ParentBased *bool `json:"parentBased,omitempty"`
	// Propagation lists the trace-context formats read from requests and written upstream:
	// tracecontext (W3C), b3 (single header), b3multi (X-B3-* headers). Defaults to
	// [tracecontext, b3]; incoming contexts are read in this order.
	// +optional
	// +listType=atomic
	Propagation []string `json:"propagation,omitempty"`
	// ServiceName is the service.name of the spans (default "apoxy-gateway").
	// +optional
	ServiceName string `json:"serviceName,omitempty"`
}

// TracingTag is a span attribute value. Exactly one of value, header and environment is set.
type TracingTag struct {
	// +optional
	Value string `json:"value,omitempty"`
	// +optional
	Header string `json:"header,omitempty"`
	// Environment names an environment variable of the data plane.
	// +optional
	Environment string `json:"environment,omitempty"`
	// Default is used when the header or environment variable is absent (else no attribute).
	// +optional
	Default string `json:"default,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// +optional
	Group string `json:"group,omitempty"`
	Kind  string `json:"kind"`
	Name  string `json:"name"`
}

// ThirdPartySinks exports telemetry to external services.
type ThirdPartySinks struct {
	// +optional
	AxiomLogs *APIKey `json:"axiomLogs,omitempty"`
	// +optional
	AxiomTraces *APIKey `json:"axiomTraces,omitempty"`
	// +optional
	DatadogLogs *APIKey `json:"datadogLogs,omitempty"`
	// +optional
	DatadogTraces *APIKey `json:"datadogTraces,omitempty"`
	// OpenTelemetrySinks are OTLP endpoints.
	// +optional
	// +listType=atomic
	OpenTelemetrySinks []OpenTelemetrySink `json:"openTelemetrySinks,omitempty"`
}

// APIKey is a credential given inline (key) or as bytes (keyData). Exactly one is set.
type APIKey struct {
	// +optional
	Key string `json:"key,omitempty"`
	// +optional
	KeyData []byte `json:"keyData,omitempty"`
	// Dataset is the Axiom dataset written to (Axiom sinks; required there).
	// +optional
	Dataset string `json:"dataset,omitempty"`
	// Site is the Datadog site (Datadog sinks; default datadoghq.com).
	// +optional
	Site string `json:"site,omitempty"`
}

// OpenTelemetrySink is an OTLP export target.
type OpenTelemetrySink struct {
	// Endpoint is the collector's URL: for http, the base URL ("/v1/traces" and the others
	// are appended); for grpc, http(s)://host:port.
	Endpoint string `json:"endpoint"`
	// Protocol is http (OTLP/HTTP, protobuf; the default) or grpc.
	// +optional
	Protocol string `json:"protocol,omitempty"`
	// +optional
	Headers map[string]string `json:"headers,omitempty"`
	// Compression is "" (gzip for grpc, none for http), gzip or none.
	// +optional
	Compression string `json:"compression,omitempty"`
	// Signals are the telemetry signals sent: logs, traces, metrics (default all three).
	// +optional
	// +listType=atomic
	Signals []TelemetrySignal `json:"signals,omitempty"`
}

// TelemetrySignal is one kind of telemetry.
type TelemetrySignal string

// The signals.
const (
	SignalLogs    TelemetrySignal = "logs"
	SignalTraces  TelemetrySignal = "traces"
	SignalMetrics TelemetrySignal = "metrics"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// CloudMonitoringIntegration sends the telemetry of the Proxies in its namespace (or the
// ones it names) to a monitoring service: Datadog, Grafana Cloud, Axiom or any OTLP endpoint.
// It becomes exporters in each Proxy's OpenTelemetry Collector pipeline; its status says
// whether exports succeed.
type CloudMonitoringIntegration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   CloudMonitoringIntegrationSpec   `json:"spec,omitempty"`
	Status CloudMonitoringIntegrationStatus `json:"status,omitempty"`
}

// CloudMonitoringIntegrationSpec is one monitoring service. Exactly one of
// datadogCredentials, grafanaCredentials, axiomCredentials and otlp is set.
type CloudMonitoringIntegrationSpec struct {
	// Enabled turns the integration on (the default) or off without deleting it.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// ProxyRefs limits the integration to these Proxies of its namespace (default: all).
	// +optional
	// +listType=atomic
	ProxyRefs []string `json:"proxyRefs,omitempty"`
	// Signals are the telemetry signals sent (default: all the service accepts).
	// +optional
	// +listType=atomic
	Signals []TelemetrySignal `json:"signals,omitempty"`
	// +optional
	DatadogCredentials *DatadogCredentials `json:"datadogCredentials,omitempty"`
	// +optional
	GrafanaCredentials *GrafanaCredentials `json:"grafanaCredentials,omitempty"`
	// +optional
	AxiomCredentials *AxiomCredentials `json:"axiomCredentials,omitempty"`
	// OTLP is any OTLP-compatible endpoint.
	// +optional
	OTLP *OTLPIntegration `json:"otlp,omitempty"`
}

// SecretValue is a credential: inline, or (better: it is then not readable with the object)
// from a Secret in the integration's namespace. Exactly one is set.
type SecretValue struct {
	// +optional
	Value string `json:"value,omitempty"`
	// +optional
	SecretKeyRef *SecretKeyRef `json:"secretKeyRef,omitempty"`
}

// DatadogCredentials sends to Datadog's OTLP intake.
type DatadogCredentials struct {
	// APIKey is a Datadog API key.
	APIKey SecretValue `json:"apiKey"`
	// Site is datadoghq.com (default), datadoghq.eu, us3.datadoghq.com, us5.datadoghq.com,
	// ap1.datadoghq.com or ddog-gov.com.
	// +optional
	Site string `json:"site,omitempty"`
}

// GrafanaCredentials sends to a Grafana Cloud stack's OTLP gateway.
type GrafanaCredentials struct {
	// APIKey is a Grafana Cloud access policy token.
	APIKey SecretValue `json:"apiKey"`
	// InstanceID is the stack's OTLP instance ID (the basic-auth user).
	InstanceID string `json:"instanceId"`
	// Endpoint is the stack's OTLP endpoint, https://otlp-gateway-<zone>.grafana.net/otlp.
	Endpoint string `json:"endpoint"`
}

// AxiomCredentials sends to an Axiom dataset.
type AxiomCredentials struct {
	// APIToken is an Axiom API token with ingest rights on the dataset.
	APIToken SecretValue `json:"apiToken"`
	// Region is us (default) or eu.
	// +optional
	Region string `json:"region,omitempty"`
	// DatasetName is the dataset written to.
	DatasetName string `json:"datasetName"`
}

// OTLPIntegration is a generic OTLP endpoint.
type OTLPIntegration struct {
	// Endpoint: for http, the base URL ("/v1/traces" and the others are appended); for
	// grpc, http(s)://host:port.
	Endpoint string `json:"endpoint"`
	// Protocol is http (the default) or grpc.
	// +optional
	Protocol string `json:"protocol,omitempty"`
	// Headers are sent with every export, each value inline or from a Secret.
	// +optional
	Headers map[string]SecretValue `json:"headers,omitempty"`
	// Compression is "" (gzip for grpc, none for http), gzip or none.
	// +optional
	Compression string `json:"compression,omitempty"`
}

// CloudMonitoringIntegrationStatus says whether the integration exports.
type CloudMonitoringIntegrationStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Connected (reasons Ready, Disabled, ValidationFailed, ConfigPending,
	// CollectorUnhealthy).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// LastSyncTime is when the integration's exporters were last (re)configured.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
	// LastExportTime is the last successful export.
	// +optional
	LastExportTime *metav1.Time `json:"lastExportTime,omitempty"`
	// LastError is the last export error, and LastErrorTime when it happened.
	// +optional
	LastError string `json:"lastError,omitempty"`
	// +optional
	LastErrorTime *metav1.Time `json:"lastErrorTime,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// CloudMonitoringIntegrationList is a list of CloudMonitoringIntegrations.
type CloudMonitoringIntegrationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CloudMonitoringIntegration `json:"items"`
}

// Trace-context formats (Tracing.Propagation).
const (
	PropagationTraceContext = "tracecontext"
	PropagationB3           = "b3"
	PropagationB3Multi      = "b3multi"
)

// OTLP protocols.
const (
	OTLPProtocolHTTP = "http"
	OTLPProtocolGRPC = "grpc"
)

// Axiom regions.
const (
	AxiomRegionUS = "us"
	AxiomRegionEU = "eu"
)

// DatadogSites are the Datadog sites an integration may send to.
var DatadogSites = []string{"datadoghq.com", "datadoghq.eu", "us3.datadoghq.com", "us5.datadoghq.com", "ap1.datadoghq.com", "ddog-gov.com"}
