package apiserver

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"apoxy.dev/apoxy/internal/telemetry/collector"
)

const goodCollectorConfig = `
receivers:
  otlp:
exporters:
  debug:
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
`

var badCollectorConfig = strings.ReplaceAll(goodCollectorConfig, "debug", "kafka")

// TestCollectorConfigRefusedWhenStored: an OpenTelemetry Collector configuration the data
// plane would refuse is refused when written, naming the field and the offending token,
// whether the Proxy or its ConfigMap comes second; the stored ConfigMap is left as it was; a
// ConfigMap no Proxy names is not checked, and a Proxy may name a ConfigMap not yet created.
func TestCollectorConfigRefusedWhenStored(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := New(Options{DataDir: dir, Addr: "127.0.0.1:0", Ports: Ports{HTTP: 8080, HTTPS: 8443}, Synchronous: "NORMAL",
		Logger: slog.New(slog.NewTextHandler(testLogOutput(), nil)),
		ValidateCollectorConfig: func(y []byte) error {
			return collector.Validate(y, filepath.Join(dir, "projects"))
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	dc := s.dynamic(t, "default", s.AdminToken())
	cms := dc.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace("default")
	proxies := dc.Resource(schema.GroupVersionResource{Group: "core.apoxy.dev", Version: "v1alpha2", Resource: "proxies"}).Namespace("default")
	configMap := func(name, cfg string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + "}\ndata:\n  config.yaml: |\n" +
			"    " + strings.ReplaceAll(strings.TrimPrefix(cfg, "\n"), "\n", "\n    ") + "\n"
	}
	proxy := func(name, cm string) string {
		return "apiVersion: core.apoxy.dev/v1alpha2\nkind: Proxy\nmetadata: {name: " + name + "}\nspec:\n  telemetry:\n    otelCollectorConfig: {name: " + cm + "}\n"
	}
	refused := func(err error, want ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("stored, want refused with %q", want)
		}
		t.Logf("refused: %v", err)
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not say %q", err, w)
			}
		}
	}

	// The Proxy first, its ConfigMap not there yet: allowed.
	if _, err := proxies.Create(ctx, obj(t, proxy("edge", "otel")), metav1.CreateOptions{}); err != nil {
		t.Fatalf("a Proxy naming a ConfigMap not yet created: %v", err)
	}
	_, err = cms.Create(ctx, obj(t, configMap("otel", badCollectorConfig)), metav1.CreateOptions{})
	refused(err, "data[config.yaml]", `unknown exporter type "kafka"`, "Proxy default/edge")
	if _, err := cms.Create(ctx, obj(t, configMap("otel", goodCollectorConfig)), metav1.CreateOptions{}); err != nil {
		t.Fatalf("a good config: %v", err)
	}
	// An update to a bad config is refused and the stored one stays.
	cur, err := cms.Get(ctx, "otel", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	upd := cur.DeepCopy()
	upd.Object["data"] = map[string]any{"config.yaml": badCollectorConfig}
	_, err = cms.Update(ctx, upd, metav1.UpdateOptions{})
	refused(err, "data[config.yaml]", "kafka")
	if now, _ := cms.Get(ctx, "otel", metav1.GetOptions{}); now.Object["data"].(map[string]any)["config.yaml"] != cur.Object["data"].(map[string]any)["config.yaml"] {
		t.Errorf("the refused update changed the stored ConfigMap")
	}
	// Losing the key is refused too while a Proxy reads it.
	upd.Object["data"] = map[string]any{"a": "1", "b": "2"}
	_, err = cms.Update(ctx, upd, metav1.UpdateOptions{})
	refused(err, "data[config.yaml]", "keep the key")

	// The ConfigMap first: a bad one nobody names is just a ConfigMap.
	if _, err := cms.Create(ctx, obj(t, configMap("spare", badCollectorConfig)), metav1.CreateOptions{}); err != nil {
		t.Fatalf("a ConfigMap no Proxy names: %v", err)
	}
	_, err = proxies.Create(ctx, obj(t, proxy("edge2", "spare")), metav1.CreateOptions{})
	refused(err, "spec.telemetry.otelCollectorConfig.name", "ConfigMap default/spare key config.yaml", `"kafka"`)
	if _, err := proxies.Get(ctx, "edge2", metav1.GetOptions{}); err == nil {
		t.Errorf("the refused Proxy was stored")
	}
}
