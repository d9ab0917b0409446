package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"apoxy.dev/apoxy/internal/component"
)

// get fetches path from s and returns the status code and body.
func get(t *testing.T, s *Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// TestReadyzAggregatesComponents: /readyz has one line per component, in order; a component
// that is not ready makes it 503 with its name and reason, and once all are ready it is 200
// ("ok", the lines only with ?verbose).
func TestReadyzAggregatesComponents(t *testing.T) {
	var mu sync.Mutex
	statuses := []component.Status{
		{Name: "admin"},
		{Name: "api-server"},
		{Name: "controllers", Err: errors.New("project team-a: configuration not applied yet")},
	}
	s, err := New(Options{Addr: "127.0.0.1:0", Readiness: func() []component.Status {
		mu.Lock()
		defer mu.Unlock()
		return append([]component.Status(nil), statuses...)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })

	code, body := get(t, s, "/readyz")
	want := "[+]admin ok\n[+]api-server ok\n[-]controllers failed: project team-a: configuration not applied yet\nreadyz check failed\n"
	if code != http.StatusServiceUnavailable || body != want {
		t.Fatalf("not ready: %d\n%s\nwant 503\n%s", code, body, want)
	}

	mu.Lock()
	statuses[2].Err = nil
	mu.Unlock()
	if code, body := get(t, s, "/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("ready: %d %q", code, body)
	}
	code, body = get(t, s, "/readyz?verbose")
	if want := "[+]admin ok\n[+]api-server ok\n[+]controllers ok\nok\n"; code != http.StatusOK || body != want {
		t.Fatalf("ready, verbose: %d\n%s\nwant\n%s", code, body, want)
	}
	if code, body := get(t, s, "/livez"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/livez: %d %q", code, body)
	}
}

// TestReadyzWithoutComponents: before the component list exists, /readyz is not ready.
func TestReadyzWithoutComponents(t *testing.T) {
	s, err := New(Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	if code, body := get(t, s, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "[-]starting") {
		t.Fatalf("%d %q", code, body)
	}
}

// TestAdminComponent: the listener is a component: ready while it serves; Stop closes it,
// makes it not ready, and may be called again.
func TestAdminComponent(t *testing.T) {
	s, err := New(Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "admin" {
		t.Fatalf("name %q", s.Name())
	}
	if s.Ready() == nil {
		t.Fatal("ready before Start")
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(); err != nil {
		t.Fatalf("not ready after Start: %v", err)
	}
	for range 2 {
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if s.Ready() == nil {
		t.Fatal("ready after Stop")
	}
	if _, err := http.Get("http://" + s.Addr() + "/livez"); err == nil {
		t.Fatal("still answering after Stop")
	}
}
