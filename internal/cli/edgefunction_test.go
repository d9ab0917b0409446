package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/edgetest"
	"apoxy.dev/apoxy/internal/function/revisions"
)

func versionFunction(v string) string {
	return `
apiVersion: extensions.apoxy.dev/v1alpha2
kind: EdgeFunction
metadata: {name: ver}
spec:
  template:
    mode: backend
    code:
      jsSource:
        assets:
          files:
          - path: index.js
            content: |
              export default { async fetch() { return new Response("` + v + `"); } };
`
}

func liveRevision(e *edgetest.Env) string {
	u := e.Get("extensions.apoxy.dev/v1alpha2", "EdgeFunction", "ver")
	if u == nil {
		return ""
	}
	st, _ := u.Object["status"].(map[string]any)
	s, _ := st["liveRevision"].(string)
	return s
}

// Rollback v1 → v2 → v1 (and forward again with --to, then --unpin) under concurrent load:
// every request succeeds, and requests see the rolled-back revision without a restart.
func TestRollbackUnderLoad(t *testing.T) {
	e := edgetest.Start(t, edgetest.Options{})
	e.Apply(versionFunction("v1") + `
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: ver}
spec:
  parentRefs: [{name: default}]
  hostnames: [ver.example.com]
  rules:
  - backendRefs: [{group: extensions.apoxy.dev, kind: EdgeFunction, name: ver}]
`)
	get := func() (int, string, error) {
		req, _ := http.NewRequest("GET", "http://"+e.HTTPAddr+"/", nil)
		req.Host = "ver.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b), nil
	}
	serves := func(v string) func() error {
		return func() error {
			if code, b, err := get(); err != nil || code != 200 || b != v {
				return fmt.Errorf("%d %q %v", code, b, err)
			}
			return nil
		}
	}
	e.WaitFor("v1 serves", serves("v1"))
	v1 := liveRevision(e)
	e.Apply(versionFunction("v2"))
	e.WaitFor("v2 serves", serves("v2"))
	v2 := liveRevision(e)
	if v1 == v2 || v1 == "" {
		t.Fatalf("revisions %q %q", v1, v2)
	}

	var ok, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, b, err := get()
				if err != nil || code != 200 || (b != "v1" && b != "v2") {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%d %q %v", code, b, err))
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		}()
	}
	ctx := context.Background()
	steps := []struct {
		to    string
		unpin bool
		want  string
		msg   string
	}{
		{want: "v1", msg: "rolled back to " + v1},
		{to: strings.TrimPrefix(v2, "ver-"), want: "v2", msg: "rolled back to " + v2},
		{to: v1, want: "v1", msg: "rolled back to " + v1},
		{unpin: true, want: "v2", msg: "unpinned"},
	}
	for _, s := range steps {
		time.Sleep(300 * time.Millisecond) // load on the revision before the switch
		msg, err := revisions.Rollback(ctx, e.Client, "default", "ver", s.to, s.unpin)
		if err != nil || !strings.Contains(msg, s.msg) {
			t.Fatalf("rollback --to %q --unpin=%v: %q %v", s.to, s.unpin, msg, err)
		}
		e.WaitFor(s.want+" serves after "+msg, serves(s.want))
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests during 4 switches, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 || ok.Load() < 100 {
		t.Fatalf("%d ok, %d failed: %v", ok.Load(), failed.Load(), failures[:min(len(failures), 5)])
	}

	var out bytes.Buffer
	if err := printRevisions(ctx, &out, e.Client, "default", "ver"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), v2) || !strings.Contains(out.String(), v1) || !strings.Contains(out.String(), "live") {
		t.Errorf("revisions:\n%s", out.String())
	}
	if _, err := revisions.Rollback(ctx, e.Client, "default", "ver", "nope", false); err == nil || !strings.Contains(err.Error(), `no revision "nope"`) {
		t.Errorf("unknown revision: %v", err)
	}
}
