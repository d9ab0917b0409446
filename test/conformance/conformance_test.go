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
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/gateway-api/conformance"
	"sigs.k8s.io/gateway-api/conformance/tests"
	"sigs.k8s.io/gateway-api/conformance/utils/config"
	"sigs.k8s.io/gateway-api/conformance/utils/grpc"
	"sigs.k8s.io/gateway-api/conformance/utils/roundtripper"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/gateway-api/conformance/utils/websocket"
	"sigs.k8s.io/gateway-api/pkg/features"

	"apoxy.dev/apoxy/internal/apiserver"
	"apoxy.dev/apoxy/internal/edgetest"
)

// claimed are the features this run exercises.
var claimed = []features.FeatureName{
	features.SupportGateway, features.SupportHTTPRoute, features.SupportReferenceGrant,
	features.SupportGatewayPort8080,
	features.SupportHTTPRouteQueryParamMatching, features.SupportHTTPRouteMethodMatching,
	features.SupportHTTPRouteResponseHeaderModification, features.SupportHTTPRouteBackendRequestHeaderModification,
	features.SupportHTTPRoutePortRedirect, features.SupportHTTPRouteSchemeRedirect, features.SupportHTTPRoutePathRedirect,
	features.SupportHTTPRouteHostRewrite, features.SupportHTTPRoutePathRewrite,
	features.SupportHTTPRoute303RedirectStatusCode, features.SupportHTTPRoute307RedirectStatusCode, features.SupportHTTPRoute308RedirectStatusCode,
	features.SupportHTTPRouteRequestTimeout, features.SupportHTTPRouteBackendTimeout,
	features.SupportHTTPRouteBackendProtocolH2C, features.SupportHTTPRouteBackendProtocolWebSocket,
	features.SupportHTTPRouteCORS, features.SupportHTTPRouteParentRefPort,
	features.SupportHTTPRouteRetry, features.SupportHTTPRouteRetryBackendTimeout, features.SupportHTTPRouteRetryConnectionError,
	features.SupportHTTPRouteNamedRouteRule, features.SupportHTTPRouteDestinationPortMatching,
	features.SupportHTTPRouteRequestMirror, features.SupportHTTPRouteRequestMultipleMirrors, features.SupportHTTPRouteRequestPercentageMirror,
}

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
		Client:               fc,
		Clientset:            clientset,
		WebSocketDialer:      &websocket.DefaultDialer{},
		GRPCClient:           &grpc.DefaultClient{},
		RoundTripper:         &roundtripper.DefaultRoundTripper{Debug: testing.Verbose(), TimeoutConfig: timeouts},
		GatewayClassName:     "apoxy",
		TimeoutConfig:        timeouts,
		SupportedFeatures:    sets.New(claimed...),
		BaseManifests:        "base/manifests.yaml",
		ManifestFS:           []fs.FS{&conformance.Manifests},
		Cleanup:              true,
		CleanupTestResources: true,
	}
	s.Setup(t, tests.ConformanceTests)

	results := map[string]string{}
	for _, ct := range tests.ConformanceTests {
		if !supported(ct) {
			results[ct.ShortName] = "skipped"
			continue
		}
		ok := t.Run(ct.ShortName, func(t *testing.T) { ct.Run(t, s) })
		results[ct.ShortName] = map[bool]string{true: "passed", false: "failed"}[ok]
	}
	report(t, results)
}

func supported(ct suite.ConformanceTest) bool {
	for _, f := range ct.Features {
		found := false
		for _, c := range claimed {
			if c == f {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return len(ct.Features) > 0
}

func report(t *testing.T, results map[string]string) {
	counts := map[string]int{}
	var failed []string
	for name, r := range results {
		counts[r]++
		if r == "failed" {
			failed = append(failed, name)
		}
	}
	sort.Strings(failed)
	var b strings.Builder
	fmt.Fprintf(&b, "UNOFFICIAL Gateway API conformance run (gateway-api v1.6.3)\npassed %d, failed %d, skipped %d\n", counts["passed"], counts["failed"], counts["skipped"])
	for _, f := range failed {
		fmt.Fprintf(&b, "  FAILED %s\n", f)
	}
	t.Log("\n" + b.String())
	_ = os.WriteFile("report.txt", []byte(b.String()), 0o644)
}
