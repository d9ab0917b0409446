package build

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"apoxy.dev/apoxy/internal/function"
	"apoxy.dev/apoxy/internal/function/js"
)

// TestJSBundleRunsTheSeed: the seed's auth-check, taken from the docs' YAML as a user applies
// it, bundles and runs on the JS runtime: 401 without Authorization, passes with it.
func TestJSBundleRunsTheSeed(t *testing.T) {
	b, err := os.ReadFile("../../../docs/examples/seed/edgefunction.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ef struct {
		Spec struct {
			Template struct {
				Code struct {
					JSSource struct {
						Entrypoint string
						Assets     struct {
							Files []struct{ Path, Content string }
						}
					} `json:"jsSource"`
				}
			}
		}
	}
	if err := yaml.Unmarshal(b, &ef); err != nil {
		t.Fatal(err)
	}
	src := ef.Spec.Template.Code.JSSource
	var files []File
	for _, f := range src.Assets.Files {
		files = append(files, File{Path: f.Path, Content: []byte(f.Content)})
	}
	mod, err := JSBundle(files, src.Entrypoint)
	if err != nil {
		t.Fatal(err)
	}
	fn, err := js.Load(context.Background(), mod, function.ModeFilter, function.Limits{})
	if err != nil {
		t.Fatalf("load the bundle: %v\n%s", err, mod)
	}
	defer fn.Close()
	for _, c := range []struct {
		auth string
		pass bool
	}{{"", false}, {"Bearer x", true}} {
		req := &function.Request{Method: "GET", URL: &url.URL{Path: "/v1"}, Host: "api.example.com", Header: http.Header{}}
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		res, err := fn.Invoke(context.Background(), req, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Pass != c.pass || (!c.pass && res.Status != http.StatusUnauthorized) {
			t.Errorf("authorization %q: pass %v status %d, want pass %v", c.auth, res.Pass, res.Status, c.pass)
		}
	}
}

// TestJSBundleTypeScriptAndModules: TypeScript with types, a relative import without an
// extension, a JSON import and a directory index are bundled into one module that runs.
func TestJSBundleTypeScriptAndModules(t *testing.T) {
	files := []File{
		{"src/main.ts", []byte(`import { greet } from "./lib/greet";
import cfg from "../config.json";
import { VERSION } from "./util";
interface Env { [k: string]: unknown }
export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    return Response.json({ msg: greet(cfg.name), v: VERSION });
  },
};`)},
		{"src/lib/greet.ts", []byte(`export const greet = (n: string): string => "hello " + n;`)},
		{"src/util/index.js", []byte(`export const VERSION = 3;`)},
		{"config.json", []byte(`{"name": "edge"}`)},
	}
	mod, err := JSBundle(files, "src/main.ts")
	if err != nil {
		t.Fatal(err)
	}
	fn, err := js.Load(context.Background(), mod, function.ModeBackend, function.Limits{})
	if err != nil {
		t.Fatalf("load: %v\n%s", err, mod)
	}
	defer fn.Close()
	res, err := fn.Invoke(context.Background(), &function.Request{Method: "GET", URL: &url.URL{Path: "/"}, Host: "a", Header: http.Header{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Body); got != `{"msg":"hello edge","v":3}` {
		t.Errorf("body %q", got)
	}
}

// TestJSBundleErrors: each failure names the file and line (or the import) so a user can
// fix it from the revision's status.
func TestJSBundleErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		files []File
		entry string
		want  []string // each must be in the error; it must start with the file's name
	}{
		{"syntax error", []File{{"index.ts", []byte("export default {\n  fetch() { return 1 +; }\n}")}}, "index.ts", []string{"index.ts:2:23: Unexpected \";\""}},
		{"bare import", []File{{"index.js", []byte(`import x from "lodash"; export default {}`)}}, "index.js", []string{"index.js:1:", `cannot import "lodash"`}},
		{"outside the files", []File{{"index.js", []byte(`import x from "../../etc/passwd"; export default {}`)}}, "index.js", []string{"leads outside"}},
		{"missing file", []File{{"index.js", []byte(`import x from "./nope"; export default {}`)}}, "index.js", []string{`cannot import "./nope": no such file`}},
		{"missing entrypoint", []File{{"index.js", []byte(`export default {}`)}}, "main.js", []string{`entrypoint "main.js" is not among`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := JSBundle(c.files, c.entry)
			var be *Error
			if !errors.As(err, &be) {
				t.Fatalf("err %v, want a build error", err)
			}
			t.Logf("%v", err)
			if strings.Contains(err.Error(), namespace) {
				t.Errorf("error %q shows the bundler's internal namespace", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// FuzzJSBundle: any source and import path gives a module or a build error, never a panic
// or an error of another kind.
func FuzzJSBundle(f *testing.F) {
	f.Add("export default { fetch() { return new Response('x') } }", "./lib")
	f.Add("import x from './lib'; export default x", "../x")
	f.Add("export default {", "lodash")
	f.Fuzz(func(t *testing.T, src, imp string) {
		files := []File{{"index.ts", []byte(src)}, {"lib.ts", []byte("import y from " + strconv.Quote(imp) + "; export default y")}}
		_, err := JSBundle(files, "index.ts")
		var be *Error
		if err != nil && !errors.As(err, &be) {
			t.Fatalf("error of another kind: %T %v", err, err)
		}
	})
}
