package ir

// Telemetry is what the data plane reports for the exchanges of one Gateway, from its Proxy
// (or the defaults, for a Gateway that names none): how access-log lines look and which are
// written, content logs, tracing, and the collector pipeline that carries it all to sinks.
// Routes name theirs (Route.Telemetry, L4Route.Telemetry) by its key in Snapshot.Telemetry.
// Gateways sharing a Proxy share its Collector (the data plane runs one pipeline per Proxy).
type Telemetry struct {
	// Project is the tenant the exchanges belong to (metrics label, `apoxy logs` stream).
	Project string `json:"project,omitempty"`
	// Gateway is the Gateway ("namespace/name") whose exchanges these are.
	Gateway string `json:"gateway"`
	// Proxy is "namespace/name", or "" for Gateways without a Proxy.
	Proxy      string      `json:"proxy,omitempty"`
	AccessLog  AccessLog   `json:"accessLog"`
	ContentLog *ContentLog `json:"contentLog,omitempty"`
	Tracing    *Tracing    `json:"tracing,omitempty"`
	// Collector is the OpenTelemetry Collector pipeline the telemetry flows through; nil when
	// nothing is exported.
	Collector *Collector `json:"collector,omitempty"`
}

// AccessLog is the shape of access-log lines and which exchanges get one.
type AccessLog struct {
	// Format is an Envoy command-operator text format; "" means JSON.
	Format string `json:"format,omitempty"`
	// JSON are fields added to the default JSON line, or replacing its fields; a field with
	// value "" is removed.
	JSON map[string]string `json:"json,omitempty"`
	// StatusCodes and MinDuration pick exchanges always logged; SamplingRate is the
	// percentage of the others logged (0-100).
	StatusCodes  []StatusRange `json:"statusCodes,omitempty"`
	MinDuration  Duration      `json:"minDuration,omitempty"`
	SamplingRate int32         `json:"samplingRate"`
}

// StatusRange is an inclusive range of HTTP statuses.
type StatusRange struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// ContentLog captures bodies into the access log.
type ContentLog struct {
	Request      bool `json:"request,omitempty"`
	Response     bool `json:"response,omitempty"`
	MaxBodyBytes int  `json:"maxBodyBytes"`
	// ContentTypes are media types ("application/json") or whole types ("text/*").
	ContentTypes []string `json:"contentTypes"`
	// Paths are path prefixes ("" none: every path).
	Paths []string `json:"paths,omitempty"`
	// RedactHeaders are canonical header names whose values are never logged.
	RedactHeaders []string `json:"redactHeaders"`
}

// Tracing is how requests are traced.
type Tracing struct {
	// SamplingRate is the percentage of new traces sampled (0-100).
	SamplingRate int32 `json:"samplingRate"`
	// ParentBased follows an incoming context's sampled flag.
	ParentBased bool `json:"parentBased,omitempty"`
	// Propagation are trace-context formats: tracecontext, b3, b3multi.
	Propagation []string `json:"propagation"`
	ServiceName string   `json:"serviceName"`
	// Tags become span attributes, in name order.
	Tags []TracingTag `json:"tags,omitempty"`
}

// TracingTag is one span attribute: a literal Value, or the value of a request Header or an
// Environment variable (Default when absent; no attribute when that is "" too).
type TracingTag struct {
	Name        string `json:"name"`
	Value       string `json:"value,omitempty"`
	Header      string `json:"header,omitempty"`
	Environment string `json:"environment,omitempty"`
	Default     string `json:"default,omitempty"`
}

// Collector is one Proxy's OpenTelemetry Collector pipeline.
type Collector struct {
	// Name identifies the pipeline ("project/namespace/proxy"): Gateways of one Proxy share it.
	Name string `json:"name"`
	// Config is the user's collector YAML (it may hold credentials, hence secret).
	Config SecretString `json:"config,omitempty"`
	// Sinks are exporters added from CloudMonitoringIntegrations and thirdPartySinks.
	Sinks []Sink `json:"sinks,omitempty"`
}

// Sink kinds.
const (
	SinkOTLPHTTP = "otlphttp"
	SinkOTLPGRPC = "otlpgrpc"
	SinkDatadog  = "datadog"
	SinkGrafana  = "grafana"
	SinkAxiom    = "axiom"
)

// Sink is one export target.
type Sink struct {
	// Name is unique in the pipeline: "cmi/<namespace>/<name>" or "thirdparty/<field>[/<i>]".
	Name string `json:"name"`
	// Origin is the object it came from (a CloudMonitoringIntegration gets its status).
	Origin Origin `json:"origin"`
	// Kind is one of the Sink* constants.
	Kind string `json:"kind"`
	// Endpoint: OTLP's base URL; Grafana's OTLP gateway URL.
	Endpoint    string                  `json:"endpoint,omitempty"`
	Headers     map[string]SecretString `json:"headers,omitempty"`
	Compression string                  `json:"compression,omitempty"`
	// Signals are logs, traces, metrics.
	Signals []string `json:"signals"`
	// APIKey: Datadog API key, Grafana token, Axiom token.
	APIKey SecretString `json:"apiKey,omitempty"`
	// Site (Datadog), InstanceID (Grafana), Region and Dataset (Axiom).
	Site       string `json:"site,omitempty"`
	InstanceID string `json:"instanceId,omitempty"`
	Region     string `json:"region,omitempty"`
	Dataset    string `json:"dataset,omitempty"`
}
