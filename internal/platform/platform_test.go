package platform

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc/grpclog"
	"k8s.io/klog/v2"

	"apoxy.dev/apoxy/internal/apiserver"
)

// TestStatusAddresses: a Gateway bound to all interfaces reports every usable address of the
// machine, loopback first; one bound to an address reports that address (finding W10).
func TestStatusAddresses(t *testing.T) {
	if got := statusAddresses("127.0.0.5"); !slices.Equal(got, []string{"127.0.0.5"}) {
		t.Fatalf("bound to 127.0.0.5: %v", got)
	}
	got := statusAddresses("")
	if len(got) == 0 || !netip.MustParseAddr(got[0]).IsLoopback() {
		t.Fatalf("all interfaces: %v, want loopback first", got)
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ip := netip.MustParsePrefix(a.String()).Addr().Unmap()
		if ip.IsLinkLocalUnicast() {
			if slices.Contains(got, ip.String()) {
				t.Errorf("link-local %s reported", ip)
			}
			continue
		}
		if !slices.Contains(got, ip.String()) {
			t.Errorf("interface address %s not reported: %v", ip, got)
		}
	}
}

// logBuffer collects a test platform's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var quietLibraries sync.Once

// testLogger logs (at debug level) to buf, and to stderr with -v; it keeps the Kubernetes
// libraries' start-up logs out of the test output.
func testLogger(t *testing.T, buf *logBuffer) *slog.Logger {
	t.Helper()
	var w io.Writer = buf
	if testing.Verbose() {
		w = io.MultiWriter(buf, os.Stderr)
	} else {
		// Once, before any server runs: the libraries read these globals unsynchronised.
		quietLibraries.Do(func() {
			klog.SetLogger(logr.Discard())
			grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
		})
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// freeAddr returns a loopback address nothing listens on (for now).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func port(t *testing.T, addr string) int32 {
	t.Helper()
	ap := netip.MustParseAddrPort(addr)
	return int32(ap.Port())
}

func readyz(addr string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/readyz?verbose")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// TestComponentsUpAndDown starts the real product with an admin listener: its components are
// the admin listener, the API server, the data plane and the controllers, in that order;
// /readyz?verbose answers 200 with one ok line each once the default project's configuration
// reached the data plane (the gateway then answers on its HTTP port); cancelling the context
// stops them all, last first (Ready fails, every socket is closed, nothing logs an error), and
// Close afterwards is a no-op.
func TestComponentsUpAndDown(t *testing.T) {
	var logs logBuffer
	log := testLogger(t, &logs)
	httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := Start(ctx, Options{
		API: apiserver.Options{DataDir: t.TempDir(), Addr: "127.0.0.1:0", Synchronous: "NORMAL",
			Ports: apiserver.Ports{HTTP: port(t, httpAddr), HTTPS: port(t, httpsAddr)}},
		BindAddress: "127.0.0.1",
		AdminAddr:   "127.0.0.1:0",
		Logger:      log,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var names []string
	for _, c := range p.Components() {
		names = append(names, c.Name())
	}
	if want := []string{"admin", "api-server", "data-plane", "controllers"}; !slices.Equal(names, want) {
		t.Fatalf("components %q, want %q", names, want)
	}

	adminAddr := p.Admin.Addr()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body, err := readyz(adminAddr)
		if err != nil {
			t.Fatal(err)
		}
		if code == http.StatusOK {
			if want := "[+]admin ok\n[+]api-server ok\n[+]data-plane ok\n[+]controllers ok\nok\n"; body != want {
				t.Fatalf("/readyz?verbose:\n%s\nwant\n%s", body, want)
			}
			t.Logf("/readyz?verbose:\n%s", body)
			break
		}
		if code != http.StatusServiceUnavailable || !strings.HasSuffix(body, "readyz check failed\n") {
			t.Fatalf("/readyz while starting: %d\n%s", code, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 60s:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := p.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	// The default project's Gateway serves on the HTTP port (no route: 404).
	resp, err := http.Get("http://" + httpAddr + "/")
	if err != nil {
		t.Fatalf("data plane: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("data plane answered %d, want 404", resp.StatusCode)
	}

	apiAddr := strings.TrimPrefix(p.API.URL(), "https://")
	cancel() // as SIGTERM does in apoxy server
	select {
	case <-p.API.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("API server still running 60s after cancel")
	}
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := p.Ready(); err == nil {
		t.Fatal("ready after shutdown")
	}
	for _, st := range p.Status() {
		if st.Err == nil || st.Err.Error() != "stopped" {
			t.Errorf("%s after shutdown: %v, want stopped", st.Name, st.Err)
		}
	}
	for what, addr := range map[string]string{"admin": adminAddr, "API": apiAddr, "HTTP": httpAddr} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s listener %s still accepts after shutdown", what, addr)
		}
	}
	var stopped []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=ERROR") {
			t.Errorf("logged: %s", l)
		}
		if _, c, ok := strings.Cut(l, `msg="component stopped" component=`); ok {
			stopped = append(stopped, strings.Fields(c)[0])
		}
	}
	if want := []string{"controllers", "data-plane", "api-server", "admin"}; !slices.Equal(stopped, want) {
		t.Errorf("stopped %q, want %q", stopped, want)
	}
}

// TestFailedStartUnwinds: when a component cannot start (the API's address is taken), Start
// fails naming it, and the components started before it are stopped (the admin listener's
// socket is free again).
func TestFailedStartUnwinds(t *testing.T) {
	log := testLogger(t, &logBuffer{})
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	adminAddr := freeAddr(t)
	_, err = Start(context.Background(), Options{
		API:       apiserver.Options{DataDir: t.TempDir(), Addr: taken.Addr().String()},
		AdminAddr: adminAddr,
		Logger:    log,
	})
	if err == nil || !strings.Contains(err.Error(), "start api-server:") {
		t.Fatalf("Start: %v, want an error naming api-server", err)
	}
	ln, err := net.Listen("tcp", adminAddr)
	if err != nil {
		t.Fatalf("admin listener not closed after the failed start: %v", err)
	}
	ln.Close()
}
