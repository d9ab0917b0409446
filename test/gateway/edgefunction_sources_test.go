package gateway

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"apoxy.dev/apoxy/internal/edgetest"
	"apoxy.dev/apoxy/internal/function/build"
	"apoxy.dev/apoxy/internal/function/source"
)

// goFilterSrc is a Go edge function in filter mode: 403 for paths ending in /deny, else it
// passes the request on with X-Go set.
const goFilterSrc = `package main

import "apoxy.dev/apoxy/pkg/edgefunc"

func main() {}

func init() {
	edgefunc.Handle(func(w edgefunc.ResponseWriter, r *edgefunc.Request) bool {
		if len(r.URI()) >= 5 && r.URI()[len(r.URI())-5:] == "/deny" {
			w.WriteHeader(403)
			w.Write([]byte("denied by go"))
			return false
		}
		r.SetHeader("X-Go", "filter")
		return true
	})
}
`

// goBackendSrc is a Go edge function in backend mode.
const goBackendSrc = `package main

import "apoxy.dev/apoxy/pkg/edgefunc"

func main() {}

func init() {
	edgefunc.Handle(func(w edgefunc.ResponseWriter, r *edgefunc.Request) bool {
		w.SetHeader("Content-Type", "text/plain")
		w.WriteHeader(200)
		w.Write([]byte("go backend " + r.URI()))
		return false
	})
}
`

// gitRepo makes a Git repository with a JS filter in fn/ on branch main and returns its
// directory.
func gitRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "fn"), 0o755)
	os.WriteFile(filepath.Join(dir, "fn", "index.js"), []byte(`import { tag } from "./tag.js";
export default {
  async request(req) {
    req.headers.set("x-from", tag);
    return null;
  }
}
`), 0o644)
	os.WriteFile(filepath.Join(dir, "fn", "tag.js"), []byte(`export const tag = "git";`+"\n"), 0o644)
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "fn"}, {"update-server-info"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

// npmRegistry serves one package shaped as the npm registry does, with a real tarball.
func npmRegistry(t *testing.T) string {
	t.Helper()
	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	for name, content := range map[string]string{
		"package/package.json": `{"name":"edge-hello","version":"1.0.0","main":"index.js"}`,
		"package/index.js":     `export default { async fetch(req) { return new Response("from npm " + new URL(req.url).pathname); } };`,
	} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
		tw.Write([]byte(content))
	}
	tw.Close()
	gz.Close()
	sum := sha512.Sum512(tgz.Bytes())
	var url string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/edge-hello":
			json.NewEncoder(w).Encode(map[string]any{
				"name": "edge-hello", "dist-tags": map[string]string{"latest": "1.0.0"},
				"versions": map[string]any{"1.0.0": map[string]any{"name": "edge-hello", "version": "1.0.0", "main": "index.js",
					"dist": map[string]string{"tarball": url + "/edge-hello/-/edge-hello-1.0.0.tgz", "integrity": "sha512-" + base64.StdEncoding.EncodeToString(sum[:])}}},
			})
		case "/edge-hello/-/edge-hello-1.0.0.tgz":
			w.Write(tgz.Bytes())
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	url = srv.URL
	return url
}

// pushWasm pushes module as a one-layer OCI artifact and returns repo (host/path).
func pushWasm(t *testing.T, host, repo string, module []byte) string {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(module, source.WasmLayerMediaType))
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), "application/vnd.wasm.config.v1+json")
	ref, err := name.ParseReference(host+"/"+repo+":v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return host + "/" + repo
}

func goModule(t *testing.T, src string) []byte {
	t.Helper()
	mod, err := build.GoWasm(context.Background(), []build.File{{Path: "main.go", Content: []byte(src)}}, build.GoOptions{})
	if err != nil {
		t.Fatalf("compiling a Go function: %v", err)
	}
	return mod
}

// Every code source end to end, each function on a route: JavaScript from Git (file:// and
// HTTP) and npm, raw WebAssembly by URL (as filter and as backend), Go compiled to
// WebAssembly by the builder from inline source (as filter and as backend) and a built Go
// module from an OCI registry.
func TestEdgeFunctionSources(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no Go toolchain")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	ln := echoServer(t, "127.0.0.22:0", "app", nil)
	filterMod, backendMod := goModule(t, goFilterSrc), goModule(t, goBackendSrc)
	// The file server is down for the first two fetches of backend.wasm: the builder retries
	// (FetchFailed, 2 s then 4 s later) and the function serves without a change.
	var backendFetches atomic.Int32
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/filter.wasm":
			w.Write(filterMod)
		case "/backend.wasm":
			if backendFetches.Add(1) <= 2 {
				http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
				return
			}
			w.Write(backendMod)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(files.Close)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	ociRepo := pushWasm(t, strings.TrimPrefix(reg.URL, "http://"), "fn/filter", filterMod)
	repo := gitRepo(t)
	execPath, _ := exec.Command("git", "--exec-path").Output()
	gitHTTP := httptest.NewServer(&cgi.Handler{Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(repo), "GIT_HTTP_EXPORT_ALL=1"}})
	t.Cleanup(gitHTTP.Close)
	npm := npmRegistry(t)

	e := edgetest.Start(t, edgetest.Options{})
	fn := func(name, mode, code string) string {
		return fmt.Sprintf("---\napiVersion: extensions.apoxy.dev/v1alpha2\nkind: EdgeFunction\nmetadata: {name: %s}\nspec:\n  template:\n    mode: %s\n    code:\n%s", name, mode, indent(code, "      "))
	}
	goAssets := func(src string) string {
		return "goPluginSource:\n  assets:\n    files:\n    - path: main.go\n      content: |\n" + indent(src, "        ")
	}
	docs := fn("js-git", "filter", "jsSource:\n  git: {repository: \"file://"+repo+"\", branch: main, path: fn}") +
		fn("js-git-http", "filter", "jsSource:\n  git: {repository: \""+gitHTTP.URL+"/"+filepath.Base(repo)+"\", path: fn}") +
		fn("js-npm", "backend", "jsSource:\n  npm: {package: edge-hello, version: latest, registry: \""+npm+"\"}") +
		fn("wasm-backend", "backend", "wasmSource: {url: \""+files.URL+"/backend.wasm\"}") +
		fn("wasm-filter", "filter", "wasmSource: {url: \""+files.URL+"/filter.wasm\"}") +
		fn("go-oci", "filter", "goPluginSource:\n  oci: {repo: \""+ociRepo+"\", tag: v1}") +
		fn("go-backend", "backend", goAssets(goBackendSrc)) +
		fn("go-filter", "filter", goAssets(goFilterSrc))
	rule := func(path, filter, backend string) string {
		s := "  - matches: [{path: {type: PathPrefix, value: /" + path + "}}]\n"
		if filter != "" {
			s += "    filters: [{type: ExtensionRef, extensionRef: {group: extensions.apoxy.dev, kind: EdgeFunction, name: " + filter + "}}]\n"
		}
		if backend != "" {
			s += "    backendRefs: [{group: extensions.apoxy.dev, kind: EdgeFunction, name: " + backend + "}]\n"
		} else {
			s += "    backendRefs: [{group: core.apoxy.dev, kind: Backend, name: app, port: " + portOf(ln) + "}]\n"
		}
		return s
	}
	docs += `---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: app}
spec:
  endpoints: [{ip: 127.0.0.22}]
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: fns}
spec:
  parentRefs: [{name: default}]
  hostnames: [fns.example.com]
  rules:
` + rule("git/", "js-git", "") + rule("git-http/", "js-git-http", "") + rule("npm/", "", "js-npm") +
		rule("wasm-backend/", "", "wasm-backend") + rule("wasm-filter/", "wasm-filter", "") + rule("oci/", "go-oci", "") +
		rule("go-backend/", "", "go-backend") + rule("go-filter/", "go-filter", "")
	e.Apply(docs)
	for _, name := range []string{"js-git", "js-git-http", "js-npm", "wasm-backend", "wasm-filter", "go-oci", "go-backend", "go-filter"} {
		deadline := time.Now().Add(3 * time.Minute) // the Go builds compile the runtime once
		for {
			err := functionReady(e, name)()
			if err == nil {
				break
			}
			if st, reason, msg, _ := functionStatus(e, name, "Built"); (st == "False" && reason != "FetchFailed") || time.Now().After(deadline) {
				t.Fatalf("%s: %v (Built %s %s: %s)", name, err, st, reason, msg)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if n := backendFetches.Load(); n != 3 {
		t.Fatalf("backend.wasm was fetched %d times, want 3 (two failures, retried)", n)
	}
	// The route's status follows the functions' live revisions on a later controller pass;
	// under CI's -race load with eight builds behind it that pass has taken over 20 s.
	accepted := e.RouteAccepted("fns")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		err := accepted()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for route accepted: %v", err)
		}
	}
	cases := []struct {
		path string
		code int
		want string
	}{
		{"/git/a", 200, `"X-From":["git"]`},
		{"/git-http/a", 200, `"X-From":["git"]`},
		{"/npm/x", 200, "from npm /npm/x"},
		{"/wasm-backend/y", 200, "go backend /wasm-backend/y"},
		{"/wasm-filter/z", 200, `"X-Go":["filter"]`},
		{"/wasm-filter/deny", 403, "denied by go"},
		{"/oci/z", 200, `"X-Go":["filter"]`},
		{"/oci/deny", 403, "denied by go"},
		{"/go-backend/q", 200, "go backend /go-backend/q"},
		{"/go-filter/q", 200, `"X-Go":["filter"]`},
		{"/go-filter/deny", 403, "denied by go"},
	}
	for _, c := range cases {
		e.WaitFor(c.path, func() error {
			if code, b := send(t, e, "fns.example.com", c.path); code != c.code || !strings.Contains(b, c.want) {
				return fmt.Errorf("%d %q, want %d with %q", code, b, c.code, c.want)
			}
			return nil
		})
	}
	// What each source resolved to is in its revision's status.
	for name, want := range map[string]string{"js-git": "git file://", "js-npm": "npm edge-hello@1.0.0 sha512-", "go-oci": "oci " + ociRepo + "@sha256:"} {
		_, _, _, live := functionStatus(e, name, "Ready")
		rev := e.Get("extensions.apoxy.dev/v1alpha2", "EdgeFunctionRevision", live)
		if src := fmt.Sprint(rev.Object["status"].(map[string]any)["source"]); !strings.HasPrefix(src, want) {
			t.Errorf("%s: status.source %q, want prefix %q", name, src, want)
		}
	}
}
