package conformance

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/gateway-api/conformance"
	"sigs.k8s.io/gateway-api/conformance/tests"
	"sigs.k8s.io/gateway-api/conformance/utils/config"
	"sigs.k8s.io/gateway-api/conformance/utils/roundtripper"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/gateway-api/conformance/utils/websocket"
	"sigs.k8s.io/gateway-api/pkg/features"

	"apoxy.dev/apoxy/internal/apiserver"
	"apoxy.dev/apoxy/internal/edgetest"
)

// TestConformance runs the upstream test bodies, unmodified, against the in-process product.
// This is an unofficial run.
func TestConformance(t *testing.T) {
	var pool []string
	for i := 1; i < 250; i++ {
		pool = append(pool, fmt.Sprintf("127.0.200.%d", i))
	}
	e := edgetest.Start(t, edgetest.Options{AddressPool: pool})
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = gwapiv1.Install(scheme)
	store := fake.NewClientBuilder().WithScheme(scheme).Build()
	rc := e.P.API.ProjectConfig(apiserver.DefaultProject)
	rc.QPS, rc.Burst = 1000, 2000 // the suite polls status constantly
	ours, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	var logOut io.Writer = io.Discard
	if testing.Verbose() {
		logOut = os.Stderr
	}
	orch := newOrchestrator(store, ours, slog.New(slog.NewTextHandler(logOut, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go orch.run(ctx)
	fc := &facade{WithWatch: store, ours: ours, orch: orch}
	logs := httptest.NewServer(http.HandlerFunc(orch.podLogs))
	t.Cleanup(logs.Close)
	clientset, err := kubernetes.NewForConfig(&rest.Config{Host: logs.URL})
	if err != nil {
		t.Fatal(err)
	}

	timeouts := config.DefaultTimeoutConfig()
	s := &suite.ConformanceTestSuite{
		Client:          fc,
		Clientset:       clientset,
		WebSocketDialer: &websocket.DefaultDialer{},
		// No GRPCClient: the suite then makes one per request. A shared client keeps its first
		// connection, and with it the first request's :authority, for every later request.
		RoundTripper:      &roundtripper.DefaultRoundTripper{Debug: testing.Verbose(), TimeoutConfig: timeouts},
		GatewayClassName:  "apoxy",
		TimeoutConfig:     timeouts,
		SupportedFeatures: advertised(t, ours),
		BaseManifests:     "base/manifests.yaml",
		ManifestFS:        []fs.FS{&conformance.Manifests},
		// Static addresses: loopback outside the pool binds; TEST-NET-1 (RFC 5737) is on no
		// interface here, so binding it fails with EADDRNOTAVAIL.
		UsableNetworkAddresses:   []gwapiv1.GatewaySpecAddress{{Type: ptr.To(gwapiv1.IPAddressType), Value: "127.0.201.1"}},
		UnusableNetworkAddresses: []gwapiv1.GatewaySpecAddress{{Type: ptr.To(gwapiv1.IPAddressType), Value: "192.0.2.1"}},
		Cleanup:                  true,
		CleanupTestResources:     true,
	}
	s.Setup(t, tests.ConformanceTests)

	var results []result
	for _, ct := range tests.ConformanceTests {
		r := result{test: ct}
		if r.skip = skipReason(ct, s.SupportedFeatures); r.skip == "" {
			r.passed = t.Run(ct.ShortName, func(t *testing.T) { ct.Run(t, s) })
		}
		results = append(results, r)
	}
	for _, r := range results {
		if r.skip != "" && coreOnly(r.test, suite.GatewayHTTPConformanceProfile) {
			t.Errorf("%s tests only core HTTP-profile features but was skipped: %s", r.test.ShortName, r.skip)
		}
	}
	text := renderReport(s.SupportedFeatures, results)
	t.Log("\n" + text)
	if err := os.WriteFile("report.txt", []byte(text), 0o644); err != nil {
		t.Error(err)
	}
}

// advertised waits for our controller to accept GatewayClass "apoxy" and
// returns the features it publishes in status.supportedFeatures: the run
// claims exactly what the product advertises, nothing the driver made up.
func advertised(t *testing.T, ours dynamic.Interface) sets.Set[features.FeatureName] {
	t.Helper()
	gvr := schema.GroupVersionResource{Group: "gateway.apoxy.dev", Version: "v1", Resource: "gatewayclasses"}
	deadline := time.Now().Add(60 * time.Second)
	for {
		u, err := ours.Resource(gvr).Get(context.Background(), "apoxy", metav1.GetOptions{})
		if err == nil {
			list, _, _ := unstructured.NestedSlice(u.Object, "status", "supportedFeatures")
			have := sets.New[features.FeatureName]()
			for _, item := range list {
				if m, ok := item.(map[string]any); ok {
					if name, ok := m["name"].(string); ok {
						have.Insert(features.FeatureName(name))
					}
				}
			}
			if have.Len() > 0 {
				return have
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GatewayClass apoxy never published status.supportedFeatures (last error: %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
