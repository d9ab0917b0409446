package echo

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

// TestCompatibleWithUpstreamEchoBasic runs the upstream echo-basic binary (built from the
// pinned conformance module) beside ours and compares responses byte for byte.
func TestCompatibleWithUpstreamEchoBasic(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "echo-basic")
	if out, err := exec.Command("go", "build", "-o", bin, "sigs.k8s.io/gateway-api/conformance/echo-basic").CombinedOutput(); err != nil {
		t.Fatalf("build echo-basic: %v\n%s", err, out)
	}
	upPort, h2cPort, tlsPort := freePort(t), freePort(t), freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "HTTP_PORT="+upPort, "H2C_PORT="+h2cPort, "HTTPS_PORT="+tlsPort,
		"NAMESPACE=gateway-conformance-infra", "POD_NAME=infra-backend-v1-abc12-def34", "SERVICE_NAME=infra-backend-v1", "INGRESS_NAME=ing")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	ours := New(Identity{Namespace: "gateway-conformance-infra", Pod: "infra-backend-v1-abc12-def34", Service: "infra-backend-v1", Ingress: "ing", HTTPPort: upPort})
	addr, err := ours.Listen("127.0.0.1:0", ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ours.Close)
	oursBase, upBase := "http://"+addr.String(), "http://127.0.0.1:"+upPort
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp, err := http.Get(upBase + "/health"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("echo-basic did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}

	type exchange struct {
		code   int
		header http.Header
		body   string
	}
	get := func(base, method, path string, hdr map[string]string) exchange {
		req, _ := http.NewRequest(method, base+path, nil)
		req.Host = "example.com"
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
		if err != nil {
			return exchange{code: -1, body: err.Error()}
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		resp.Header.Del("Date")
		return exchange{resp.StatusCode, resp.Header, string(b)}
	}
	for _, tc := range []struct {
		method, path string
		hdr          map[string]string
	}{
		{"GET", "/", nil},
		{"GET", "/some//path?a=1&b=two", map[string]string{"X-Custom": "v", "User-Agent": "conformance"}},
		{"POST", "/echo", map[string]string{"X-Echo-Set-Header": "X-Foo: bar, x-lower:baz,X-Foo:again"}},
		{"GET", "/health", nil},
		{"GET", "/status/418", nil},
		{"GET", "/status/418?x=1", nil},
		{"GET", "/?delay=10ms", nil},
		{"GET", "/?delay=bogus", nil},
		{"GET", "/retry/x?uuid=u1", nil},
		{"GET", "/retry/x?uuid=u2&succeedAfter=1&responseCode=503", nil},
		{"GET", "/retry/x?uuid=u2&succeedAfter=1&responseCode=503", nil},
	} {
		name := fmt.Sprintf("%s %s", tc.method, tc.path)
		want := get(upBase, tc.method, tc.path, tc.hdr)
		got := get(oursBase, tc.method, tc.path, tc.hdr)
		if got.code != want.code || got.body != want.body {
			t.Errorf("%s:\n upstream %d %q\n ours     %d %q", name, want.code, want.body, got.code, got.body)
		}
		for k := range want.header {
			if k == "Content-Length" {
				continue
			}
			if strings.Join(got.header[k], "|") != strings.Join(want.header[k], "|") {
				t.Errorf("%s: header %s: upstream %q, ours %q", name, k, want.header[k], got.header[k])
			}
		}
	}
	// The h2c port refuses plain HTTP/1.1 and echoes h2c.
	h2cOurs, err := ours.Listen("127.0.0.1:0", ListenOptions{H2COnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{"http://127.0.0.1:" + h2cPort, "http://" + h2cOurs.String()} {
		if r := get(base, "GET", "/", nil); r.code != 400 || r.body != "Expected h2c request" {
			t.Errorf("%s over HTTP/1.1: %d %q", base, r.code, r.body)
		}
		h2c := &http.Transport{Protocols: new(http.Protocols)}
		h2c.Protocols.SetUnencryptedHTTP2(true)
		resp, err := (&http.Client{Transport: h2c}).Get(base + "/x")
		if err != nil {
			t.Fatalf("%s over h2c: %v", base, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"proto": "HTTP/2.0"`) {
			t.Errorf("%s over h2c: %d %s", base, resp.StatusCode, b)
		}
	}
	if !strings.Contains(string(ours.Log()), "Echoing back request made to /echo to client") {
		t.Errorf("log: %q", ours.Log())
	}
}
