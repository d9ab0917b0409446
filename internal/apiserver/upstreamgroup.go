package apiserver

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	gatewayv1 "apoxy.dev/apoxy/api/gateway/v1"
)

// The upstream Gateway API group is served as an alias of ours: a manifest copied from the
// Gateway API docs (apiVersion gateway.networking.k8s.io/v1) applies unchanged with kubectl,
// and is stored as gateway.apoxy.dev/v1, the one object both groups show. The kinds and
// schemas are the same Go types, so the alias is a rename at the API's edge, not a second
// storage: discovery lists the upstream group with our versions (without short names or
// categories, so `kubectl get httproute` and `kubectl get gateway-api` still mean ours, once);
// requests under /apis/gateway.networking.k8s.io/ are served by our group with the
// apiVersion of their body renamed, and their answers renamed back.
const (
	ourGroupPath      = "/apis/" + gatewayv1.GroupName
	upstreamGroupPath = "/apis/" + gatewayv1.UpstreamGroupName
	// openAPIUpstreamPath is where the upstream group's OpenAPI v3 documents are.
	openAPIUpstreamPath = "/openapi/v3" + upstreamGroupPath
	// maxAliasBody bounds a request body the alias reads to rename (the API's own limit is 3 MiB).
	maxAliasBody = 3 << 20
)

var (
	// toOurs and toUpstream match an apiVersion key with a Gateway API group value in JSON.
	// Inside a JSON string every quote is escaped, so these match object keys only, never the
	// text of a value (such as kubectl's last-applied annotation).
	toOurs     = regexp.MustCompile(`"apiVersion"(\s*):(\s*)"` + regexp.QuoteMeta(gatewayv1.UpstreamGroupName) + `/`)
	toUpstream = regexp.MustCompile(`"apiVersion"(\s*):(\s*)"` + regexp.QuoteMeta(gatewayv1.GroupName) + `/`)
)

// upstreamAlias serves the upstream Gateway API group on top of next (a project's API).
func upstreamAlias(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == "/apis" || p == "/apis/":
			aliasDocument(next, w, r, editJSON(addUpstreamGroup))
		case p == "/openapi/v3" || p == "/openapi/v3/":
			aliasDocument(next, w, r, editJSON(addUpstreamOpenAPIPaths))
		case strings.HasPrefix(p, openAPIUpstreamPath+"/") || p == openAPIUpstreamPath:
			aliasDocument(next, w, withPath(r, "/openapi/v3"+ourGroupPath+strings.TrimPrefix(p, openAPIUpstreamPath)), renameOpenAPI)
		case p == upstreamGroupPath || strings.HasPrefix(p, upstreamGroupPath+"/"):
			rest := strings.TrimPrefix(p, upstreamGroupPath)
			if rest == "" || rest == "/" || strings.Count(strings.Trim(rest, "/"), "/") == 0 {
				// The group (/apis/<group>) or a version's resource list (/apis/<group>/<v>).
				aliasDocument(next, w, withPath(r, ourGroupPath+rest), editJSON(renameGroupDocument))
				return
			}
			aliasResource(next, w, withPath(r, ourGroupPath+rest))
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func withPath(r *http.Request, path string) *http.Request {
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = path, ""
	r2.RequestURI = r2.URL.RequestURI()
	r2.Header.Del("Accept-Encoding") // answers are renamed, so they must not come compressed
	return r2
}

// aliasDocument serves a document (discovery, OpenAPI) from next, edited by edit. A document
// edit cannot read (not JSON, an error) is passed on as it is.
func aliasDocument(next http.Handler, w http.ResponseWriter, r *http.Request, edit func([]byte) ([]byte, bool)) {
	r = withPath(r, r.URL.Path)
	// The client's cached copy is of the edited document: revalidate it here, against the
	// edited document's ETag, not in next, against the original's.
	inm := r.Header.Get("If-None-Match")
	r.Header.Del("If-None-Match")
	rec := &recorder{header: http.Header{}, code: http.StatusOK}
	next.ServeHTTP(rec, r)
	body := rec.body.Bytes()
	if rec.code == http.StatusOK && strings.Contains(rec.header.Get("Content-Type"), "json") {
		if b, ok := edit(body); ok {
			body = b
			// The document differs from the one the ETag names; a client's cached copy
			// is revalidated against the edited one.
			if et := rec.header.Get("ETag"); et != "" {
				rec.header.Set("ETag", strconv.Quote(strings.Trim(et, `"`)+"-upstream"))
			}
		}
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	if et := rec.header.Get("ETag"); rec.code == http.StatusOK && et != "" && inm == et {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(rec.code)
	_, _ = w.Write(body)
}

// editJSON adapts an edit of a decoded JSON object to aliasDocument.
func editJSON(edit func(map[string]any) bool) func([]byte) ([]byte, bool) {
	return func(body []byte) ([]byte, bool) {
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil || !edit(doc) {
			return nil, false
		}
		b, err := json.Marshal(doc)
		return b, err == nil
	}
}

// addUpstreamOpenAPIPaths lists the upstream group's OpenAPI v3 documents in /openapi/v3, at
// the same hashes as ours (their content differs only by the group's name).
func addUpstreamOpenAPIPaths(doc map[string]any) bool {
	paths, _ := doc["paths"].(map[string]any)
	changed := false
	for p, v := range paths {
		rest, ok := strings.CutPrefix(p, "apis/"+gatewayv1.GroupName)
		if !ok {
			continue
		}
		entry, _ := v.(map[string]any)
		u, _ := entry["serverRelativeURL"].(string)
		paths["apis/"+gatewayv1.UpstreamGroupName+rest] = map[string]any{
			"serverRelativeURL": strings.Replace(u, gatewayv1.GroupName, gatewayv1.UpstreamGroupName, 1),
		}
		changed = true
	}
	return changed
}

// renameOpenAPI renames our group to the upstream's throughout an OpenAPI document of our group
// (paths, group-version-kind extensions, references in descriptions).
func renameOpenAPI(body []byte) ([]byte, bool) {
	return bytes.ReplaceAll(body, []byte(gatewayv1.GroupName), []byte(gatewayv1.UpstreamGroupName)), true
}

// addUpstreamGroup appends the upstream group, a copy of ours, to /apis: an APIGroupList or an
// aggregated APIGroupDiscoveryList. It goes after ours, so a name that both serve resolves to ours.
func addUpstreamGroup(doc map[string]any) bool {
	switch doc["kind"] {
	case "APIGroupList":
		groups, _ := doc["groups"].([]any)
		for _, g := range groups {
			if m, _ := g.(map[string]any); m["name"] == gatewayv1.GroupName {
				alias := deepCopyJSON(m)
				renameGroupDocument(alias)
				doc["groups"] = append(groups, alias)
				return true
			}
		}
	case "APIGroupDiscoveryList":
		items, _ := doc["items"].([]any)
		for _, g := range items {
			m, _ := g.(map[string]any)
			if meta, _ := m["metadata"].(map[string]any); meta["name"] == gatewayv1.GroupName {
				alias := deepCopyJSON(m)
				alias["metadata"].(map[string]any)["name"] = gatewayv1.UpstreamGroupName
				versions, _ := alias["versions"].([]any)
				for _, v := range versions {
					vm, _ := v.(map[string]any)
					resources, _ := vm["resources"].([]any)
					for _, res := range resources {
						aliasResourceEntry(res.(map[string]any))
					}
				}
				doc["items"] = append(items, alias)
				return true
			}
		}
	}
	return false
}

// renameGroupDocument turns our group's APIGroup or a version's APIResourceList into the
// upstream group's.
func renameGroupDocument(doc map[string]any) bool {
	rename := func(gv any) string {
		s, _ := gv.(string)
		return strings.Replace(s, gatewayv1.GroupName, gatewayv1.UpstreamGroupName, 1)
	}
	switch {
	case doc["groupVersion"] != nil: // APIResourceList
		doc["groupVersion"] = rename(doc["groupVersion"])
		resources, _ := doc["resources"].([]any)
		for _, res := range resources {
			aliasResourceEntry(res.(map[string]any))
		}
	default: // APIGroup
		doc["name"] = gatewayv1.UpstreamGroupName
		versions, _ := doc["versions"].([]any)
		for _, v := range versions {
			v.(map[string]any)["groupVersion"] = rename(v.(map[string]any)["groupVersion"])
		}
		if pv, ok := doc["preferredVersion"].(map[string]any); ok {
			pv["groupVersion"] = rename(pv["groupVersion"])
		}
	}
	return true
}

// aliasResourceEntry drops what would make a name ambiguous between the two groups (short
// names, categories) from a resource's discovery entry and names the upstream group.
func aliasResourceEntry(res map[string]any) {
	delete(res, "shortNames")
	delete(res, "categories")
	if rk, ok := res["responseKind"].(map[string]any); ok && rk["group"] == gatewayv1.GroupName {
		rk["group"] = gatewayv1.UpstreamGroupName
	}
	subs, _ := res["subresources"].([]any)
	for _, s := range subs {
		if rk, ok := s.(map[string]any)["responseKind"].(map[string]any); ok && rk["group"] == gatewayv1.GroupName {
			rk["group"] = gatewayv1.UpstreamGroupName
		}
	}
}

func deepCopyJSON(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// aliasResource serves a resource request of the upstream group with ours: the body's
// apiVersion (and any nested object's, such as an ownerReference) renamed to our group, and
// the answer's renamed back, line by line so that a watch streams as it would.
func aliasResource(next http.Handler, w http.ResponseWriter, r *http.Request) {
	if r.Body != nil && r.ContentLength != 0 {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxAliasBody+1))
		if err != nil {
			writeStatus(w, http.StatusBadRequest, "BadRequest", "reading the request body: "+err.Error())
			return
		}
		if len(body) > maxAliasBody {
			writeStatus(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "the request body is larger than 3 MiB")
			return
		}
		ct := r.Header.Get("Content-Type")
		if strings.Contains(ct, "yaml") {
			// YAML bodies (kubectl sends JSON; curl users may not) are renamed as JSON, which
			// every YAML content type also accepts.
			if j, err := yaml.YAMLToJSON(body); err == nil {
				body = j
				if !strings.Contains(ct, "apply-patch") {
					r.Header.Set("Content-Type", "application/json")
				}
			}
		}
		body = toOurs.ReplaceAll(body, []byte(`"apiVersion"${1}:${2}"`+gatewayv1.GroupName+`/`))
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	}
	rw := &renamingWriter{w: w}
	next.ServeHTTP(rw, r)
	rw.finish()
}

// renamingWriter renames our group's apiVersions to the upstream group's in a JSON answer,
// a line at a time (a watch writes one event per line; a compact or indented JSON document
// never puts a line break between a key and its value). Other answers pass through.
type renamingWriter struct {
	w       http.ResponseWriter
	started bool
	rename  bool
	buf     []byte
}

func (rw *renamingWriter) Header() http.Header { return rw.w.Header() }

func (rw *renamingWriter) WriteHeader(code int) {
	if rw.started {
		return
	}
	rw.started = true
	rw.rename = strings.Contains(rw.w.Header().Get("Content-Type"), "json")
	if rw.rename {
		rw.w.Header().Del("Content-Length")
	}
	rw.w.WriteHeader(code)
}

func (rw *renamingWriter) Write(p []byte) (int, error) {
	rw.WriteHeader(http.StatusOK)
	if !rw.rename {
		return rw.w.Write(p)
	}
	rw.buf = append(rw.buf, p...)
	if i := bytes.LastIndexByte(rw.buf, '\n'); i >= 0 {
		if err := rw.emit(rw.buf[:i+1]); err != nil {
			return 0, err
		}
		rw.buf = append(rw.buf[:0], rw.buf[i+1:]...)
	}
	return len(p), nil
}

func (rw *renamingWriter) emit(b []byte) error {
	_, err := rw.w.Write(toUpstream.ReplaceAll(b, []byte(`"apiVersion"${1}:${2}"`+gatewayv1.UpstreamGroupName+`/`)))
	return err
}

// CloseNotify is the underlying connection's: the API server's writer wrappers look for a
// writer that both flushes and notifies before they stream a watch.
func (rw *renamingWriter) CloseNotify() <-chan bool {
	//nolint:staticcheck // the API server still requires http.CloseNotifier for watches
	if cn, ok := rw.w.(http.CloseNotifier); ok {
		return cn.CloseNotify()
	}
	return make(chan bool)
}

// Flush sends what is complete: a watch event is flushed once its line has ended.
func (rw *renamingWriter) Flush() {
	if f, ok := rw.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (rw *renamingWriter) finish() {
	if len(rw.buf) > 0 {
		_ = rw.emit(rw.buf)
		rw.buf = nil
	}
}

// recorder keeps a whole answer (discovery documents are small).
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.code = code }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }
