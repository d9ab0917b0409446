package collector

import (
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSinkMapping(t *testing.T) {
	queue := map[string]any{"enabled": true, "num_consumers": 1, "queue_size": sinkQueueSize}
	retry := map[string]any{"enabled": true, "max_elapsed_time": "1m0s"}
	for _, tc := range []struct {
		sink Sink
		want sinkExporter
	}{
		{
			Sink{Name: "otel", Kind: OTLPHTTP, Endpoint: "https://otel.example.com:4318", Headers: map[string]string{"x-team": "a"}, Compression: "zstd"},
			sinkExporter{ID: "otlphttp/apoxy-otel", Signals: AllSignals, Config: map[string]any{
				"endpoint": "https://otel.example.com:4318", "timeout": "10s", "compression": "zstd", "write_buffer_size": sinkWriteBuffer,
				"headers": map[string]any{"x-team": "a"}, "sending_queue": queue, "retry_on_failure": retry,
			}},
		},
		{
			Sink{Name: "grpc", Kind: OTLPGRPC, Endpoint: "http://collector.internal:4317", Signals: []Signal{Traces}, Timeout: 3 * time.Second},
			sinkExporter{ID: "otlp/apoxy-grpc", Signals: []Signal{Traces}, Config: map[string]any{
				"endpoint": "http://collector.internal:4317", "timeout": "3s", "tls": map[string]any{"insecure": true},
				"sending_queue": queue, "retry_on_failure": retry,
			}},
		},
		{
			Sink{Name: "grpc-tls", Kind: OTLPGRPC, Endpoint: "collector.example.com:4317"},
			sinkExporter{ID: "otlp/apoxy-grpc-tls", Signals: AllSignals, Config: map[string]any{
				"endpoint": "collector.example.com:4317", "timeout": "10s",
				"sending_queue": queue, "retry_on_failure": retry,
			}},
		},
		{
			Sink{Name: "dd", Kind: Datadog, Site: "us5.datadoghq.com", APIKey: "k3y", Headers: map[string]string{"DD-API-KEY": "ignored", "dd-otlp-source": "acme"}},
			sinkExporter{ID: "otlphttp/apoxy-dd", Signals: AllSignals, Config: map[string]any{
				"endpoint": "https://otlp.us5.datadoghq.com", "timeout": "10s", "write_buffer_size": sinkWriteBuffer,
				"headers":       map[string]any{"dd-api-key": "k3y", "dd-otlp-source": "acme"},
				"sending_queue": queue, "retry_on_failure": retry,
			}},
		},
		{
			Sink{Name: "dd-default", Kind: Datadog, APIKey: "k3y", Signals: []Signal{Logs}},
			sinkExporter{ID: "otlphttp/apoxy-dd-default", Signals: []Signal{Logs}, Config: map[string]any{
				"endpoint": "https://otlp.datadoghq.com", "timeout": "10s", "write_buffer_size": sinkWriteBuffer,
				"headers":       map[string]any{"dd-api-key": "k3y"},
				"sending_queue": queue, "retry_on_failure": retry,
			}},
		},
		{
			Sink{Name: "grafana", Kind: GrafanaCloud, Endpoint: "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp", InstanceID: "123456", APIKey: "glc_token"},
			sinkExporter{ID: "otlphttp/apoxy-grafana", Signals: AllSignals, Config: map[string]any{
				"endpoint": "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp", "timeout": "10s", "write_buffer_size": sinkWriteBuffer,
				"headers":       map[string]any{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("123456:glc_token"))},
				"sending_queue": queue, "retry_on_failure": retry,
			}},
		},
		{
			Sink{Name: "axiom", Kind: Axiom, APIKey: "xaat-1", Dataset: "edge-logs", Signals: []Signal{Logs}},
			sinkExporter{ID: "otlphttp/apoxy-axiom", Signals: []Signal{Logs}, Config: map[string]any{
				"endpoint": "https://api.axiom.co", "timeout": "10s", "write_buffer_size": sinkWriteBuffer,
				"headers":       map[string]any{"Authorization": "Bearer xaat-1", "x-axiom-dataset": "edge-logs"},
				"sending_queue": queue, "retry_on_failure": retry,
			}},
		},
		{
			Sink{Name: "axiom-eu", Kind: Axiom, Region: "eu", APIKey: "xaat-1", Dataset: "edge-metrics", Signals: []Signal{Metrics}},
			sinkExporter{ID: "otlphttp/apoxy-axiom-eu", Signals: []Signal{Metrics}, Config: map[string]any{
				"endpoint": "https://eu-central-1.aws.edge.axiom.co", "timeout": "10s", "write_buffer_size": sinkWriteBuffer,
				"headers":       map[string]any{"Authorization": "Bearer xaat-1", "x-axiom-metrics-dataset": "edge-metrics"},
				"sending_queue": queue, "retry_on_failure": retry,
			}},
		},
	} {
		got, err := tc.sink.exporter()
		if err != nil {
			t.Errorf("%s: %v", tc.sink.Name, err)
			continue
		}
		got.Secrets = nil
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %#v\nwant %#v", tc.sink.Name, got, tc.want)
		}
	}
}

func TestSinkMappingRefuses(t *testing.T) {
	for _, tc := range []struct {
		sink Sink
		want string
	}{
		{Sink{Name: "x", Kind: "Splunk"}, `sink "x": unknown kind "Splunk"`},
		{Sink{Name: "x", Kind: OTLPHTTP}, `sink "x": endpoint is required`},
		{Sink{Name: "x", Kind: OTLPHTTP, Endpoint: "ftp://h"}, `sink "x": endpoint: scheme must be http or https`},
		{Sink{Name: "x", Kind: OTLPGRPC, Endpoint: "unix:///s"}, `sink "x": endpoint: only host:port`},
		{Sink{Name: "x", Kind: OTLPGRPC, Endpoint: "h"}, `sink "x": endpoint: want host:port`},
		{Sink{Name: "x", Kind: Datadog}, `sink "x": Datadog needs an API key`},
		{Sink{Name: "x", Kind: GrafanaCloud, Endpoint: "https://g"}, `sink "x": Grafana Cloud needs the instance ID and an API token`},
		{Sink{Name: "x", Kind: Axiom, APIKey: "k", Dataset: "d"}, `sink "x": Axiom keeps each signal in a dataset of its own`},
		{Sink{Name: "x", Kind: Axiom, APIKey: "k", Dataset: "d", Region: "ap", Signals: []Signal{Logs}}, `sink "x": unknown Axiom region "ap"`},
		{Sink{Name: "x", Kind: OTLPHTTP, Endpoint: "https://h", Signals: []Signal{"profiles"}}, `sink "x": signal "profiles" is not one OTLPHTTP takes`},
		{Sink{Name: "x", Kind: OTLPHTTP, Endpoint: "https://h", Compression: "brotli"}, `sink "x": compression "brotli"`},
		{Sink{Name: "x", Kind: OTLPHTTP, Endpoint: "https://h", Headers: map[string]string{"a b": "c"}}, `sink "x": header name "a b"`},
		{Sink{Name: "x_y", Kind: OTLPHTTP, Endpoint: "https://h"}, `sink "x_y": name must be`},
	} {
		_, err := tc.sink.exporter()
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %s...", tc.sink, err, tc.want)
		}
	}
}

func TestPublicAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "2606:4700::1111": true,
		"127.0.0.1": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "fd00::1": false, "100.64.0.1": false,
		"0.0.0.0": false, "::": false, "224.0.0.1": false, "::ffff:127.0.0.1": false, "0.1.2.3": false,
	} {
		g := &egressGuard{}
		err := g.control("tcp", addr+":443", nil)
		if strings.Contains(addr, ":") {
			err = g.control("tcp", "["+addr+"]:443", nil)
		}
		if (err == nil) != want {
			t.Errorf("%s: got %v, want public=%v", addr, err, want)
		}
	}
}
