// Package collector runs a project's OpenTelemetry Collector inside the server: the upstream
// collector's service, built from its own modules, with a component set we choose and a
// receiver fed in-process by the gateway.
//
// A project that configures telemetry sinks (Proxy spec.telemetry, CloudMonitoringIntegration)
// gets one Collector; a project without sinks gets none and costs nothing. The project's YAML
// is the collector's own format, as users already write it for a standalone collector:
//
//   - receivers: every receiver of type otlp is replaced by the in-process receiver (its
//     protocols and endpoints are ignored: no port is opened); any other receiver is refused.
//   - processors: batch, memory_limiter (which never forces a GC of the shared process).
//   - exporters: otlp (gRPC; also otlp_grpc), otlphttp (also otlp_http),
//     prometheusremotewrite, file (under Config.FileDir only), debug (to the server log).
//   - extensions, service.extensions and service.telemetry are accepted and ignored, with a
//     warning; connectors are refused.
//
// Sinks (generic OTLP, Datadog, Grafana Cloud, Axiom) become exporters named
// otlphttp/apoxy-<name> (otlp/apoxy-<name> for OTLP/gRPC) added to every pipeline of the
// signals they take; with no YAML, a pipeline per signal is generated: in-process receiver,
// memory_limiter, batch, the sinks' exporters.
//
// The gateway pushes telemetry with Consume*, which never blocks: a bounded queue per signal
// sits in front of the pipelines and drops (counted by Dropped) when full. Status reports each
// exporter's last success and last error for the control plane. Validate checks a YAML before
// the API server stores it. See docs/telemetry-collector.md.
package collector
