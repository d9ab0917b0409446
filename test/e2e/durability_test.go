package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

var backendsGVR = schema.GroupVersionResource{Group: "core.apoxy.dev", Version: "v1alpha2", Resource: "backends"}

func (d *devServer) dynamic(t testing.TB) dynamic.ResourceInterface {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", d.kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst = 1000, 1000
	rc.Timeout = 5 * time.Second
	dc, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return dc.Resource(backendsGVR).Namespace("default")
}

func backend(name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "core.apoxy.dev/v1alpha2", "kind": "Backend",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"endpoints": []any{map[string]any{"ip": "10.0.0.1"}}},
	}}
}

// TestKill9KeepsAcknowledgedWrites kills the server with SIGKILL while clients are creating
// objects, restarts it on the same data directory, and checks that every create the server
// acknowledged is there.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	dir := t.TempDir()
	d := startDev(t, dir)
	client := d.dynamic(t)

	var (
		mu    sync.Mutex
		acked []string
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				name := fmt.Sprintf("be-%d", next.Add(1))
				if _, err := client.Create(ctx, backend(name), metav1.CreateOptions{}); err == nil {
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				}
			}
		}()
	}
	// Kill mid-stream, once a good number of writes went through.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.kill9()
	cancel()
	wg.Wait()
	if len(acked) < 50 {
		t.Fatalf("only %d acknowledged creates before the kill", len(acked))
	}

	d.start()
	list, err := d.dynamic(t).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, it := range list.Items {
		have[it.GetName()] = true
	}
	var lost []string
	for _, name := range acked {
		if !have[name] {
			lost = append(lost, name)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged objects lost after kill -9: %v", len(lost), len(acked), lost)
	}
	t.Logf("%d acknowledged creates, all present after kill -9 and restart (%d stored)", len(acked), len(list.Items))
}

// TestSIGTERMShutsDownCleanly: SIGTERM ends `apoxy dev` with exit status 0.
func TestSIGTERMShutsDownCleanly(t *testing.T) {
	d := startDev(t, "")
	start := time.Now()
	d.stop()
	if !d.cmd.ProcessState.Success() {
		t.Fatalf("exit status %v after SIGTERM\n%s", d.cmd.ProcessState, d.log)
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}

// TestDrainKeepsAccepting: after SIGTERM, while a request is still in flight, new connections
// are served (with Connection: close) instead of being refused, /readyz answers 503 (the data
// plane drains; the API server, stopped after it, is still up), and the in-flight request
// finishes (finding W11).
func TestDrainKeepsAccepting(t *testing.T) {
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(3 * time.Second)
		}
		io.WriteString(w, "ok "+r.URL.Path)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go backend.Serve(ln)
	defer backend.Close()
	d := startDev(t, "")
	must(t, d.apoxy(t, fmt.Sprintf(`
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: local}
spec: {endpoints: [{ip: 127.0.0.1}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: local}
spec:
  parentRefs: [{name: default}]
  rules: [{backendRefs: [{kind: Backend, name: local, port: %d}]}]
`, ln.Addr().(*net.TCPAddr).Port), "apply", "-f", "-"))
	get := func(path string) (*http.Response, string, error) {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
		resp, err := c.Get("http://" + d.httpAddr + path)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b), nil
	}
	waitFor(t, func() bool { _, body, err := get("/fast"); return err == nil && body == "ok /fast" })

	slow := make(chan string, 1)
	go func() {
		_, body, err := get("/slow")
		if err != nil {
			body = err.Error()
		}
		slow <- body
	}()
	time.Sleep(300 * time.Millisecond)
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	resp, body, err := get("/fast")
	if err != nil {
		t.Fatalf("new connection during the drain: %v", err)
	}
	if body != "ok /fast" || !resp.Close {
		t.Fatalf("during the drain: %q, Connection: close = %v", body, resp.Close)
	}
	// Meanwhile /readyz says 503: the controllers have stopped and the data plane is draining;
	// the API server, stopped after the drain, still serves.
	rz, err := http.Get("http://" + d.adminAddr + "/readyz")
	if err != nil {
		t.Fatalf("/readyz during the drain: %v", err)
	}
	rzBody, _ := io.ReadAll(rz.Body)
	rz.Body.Close()
	for _, line := range []string{"[-]controllers failed: stopped\n", "[-]data-plane failed: stopping\n", "[+]api-server ok\n", "[+]admin ok\n"} {
		if rz.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(rzBody), line) {
			t.Fatalf("/readyz during the drain: %d\n%s\nwant 503 with %q", rz.StatusCode, rzBody, line)
		}
	}
	if got := <-slow; got != "ok /slow" {
		t.Fatalf("in-flight request: %q", got)
	}
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("apoxy dev did not exit after the drain")
	}
}
