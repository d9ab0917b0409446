package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	extv1a2 "apoxy.dev/apoxy/api/extensions/v1alpha2"
	"apoxy.dev/apoxy/internal/function/builder"
	"apoxy.dev/apoxy/internal/function/revisions"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"apoxy.dev/apoxy/internal/explain"
	"apoxy.dev/apoxy/internal/overview"
	"apoxy.dev/apoxy/internal/resource"
)

// section groups kinds in the navigation. A kind no section names is listed under "More", so a
// new kind appears in the console once it is in the registry.
type section struct {
	Title string
	Kinds []string
}

var sections = []section{
	{"Gateways", []string{"Gateway", "GatewayClass", "ListenerSet"}},
	{"Routes", []string{"HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"}},
	{"Backends", []string{"Backend", "DirectResponse", "HTTPRouteFilter", "BackendTLSPolicy", "ReferenceGrant"}},
	{"Policies", []string{"TrafficPolicy", "AuthPolicy"}},
	{"Functions", []string{"EdgeFunction", "EdgeFunctionRevision"}},
	{"DNS and certificates", []string{"DomainZone", "DomainRecord", "Secret"}},
	{"Tunnels", []string{"TunnelNode"}},
}

// navSection is a section as the layout shows it.
type navSection struct {
	Title string
	Kinds []*resource.Kind
}

func navigation() []navSection {
	var out []navSection
	named := map[string]bool{}
	for _, s := range sections {
		ns := navSection{Title: s.Title}
		for _, k := range s.Kinds {
			named[k] = true
			if kind := kindByName(k); kind != nil {
				ns.Kinds = append(ns.Kinds, kind)
			}
		}
		out = append(out, ns)
	}
	more := navSection{Title: "More"}
	for _, k := range resource.Kinds() {
		if !k.Root && !named[k.GVK.Kind] {
			more.Kinds = append(more.Kinds, k)
		}
	}
	return append(out, more)
}

func kindByName(name string) *resource.Kind {
	for _, k := range resource.Kinds() {
		if !k.Root && k.GVK.Kind == name {
			return k
		}
	}
	return nil
}

func kindByPlural(plural string) *resource.Kind {
	for _, k := range resource.Kinds() {
		if !k.Root && k.Plural == plural {
			return k
		}
	}
	return nil
}

// apiPath is a kind's collection path in a project's API (namespace "" lists all).
func apiPath(k *resource.Kind, ns string) string {
	p := "/apis/" + k.GVK.Group + "/" + k.GVK.Version
	if k.GVK.Group == "" {
		p = "/api/" + k.GVK.Version
	}
	if k.Namespaced && ns != "" {
		p += "/namespaces/" + ns
	}
	return p + "/" + k.Plural
}

// route dispatches a signed-in request (rest is the path below /console).
func (c *Console) route(w http.ResponseWriter, r *http.Request, s *session, rest string) {
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	if parts[0] == "" {
		c.home(w, r, s)
		return
	}
	if parts[0] == "signout" && r.Method == http.MethodPost {
		c.endSession(w, s)
		http.Redirect(w, r, Prefix+"signin", http.StatusSeeOther)
		return
	}
	if parts[0] != "p" || len(parts) < 2 {
		c.fail(w, r, s, http.StatusNotFound, "No such page.")
		return
	}
	project := parts[1]
	if !s.admin && project != s.project {
		c.fail(w, r, s, http.StatusForbidden, fmt.Sprintf("Your key is for project %q, not %q.", s.project, project))
		return
	}
	p := &pageCtx{c: c, w: w, r: r, s: s, project: project}
	switch sub := parts[2:]; {
	case len(sub) == 0:
		p.overview()
	case len(sub) == 2 && sub[0] == "k":
		p.list(sub[1])
	case len(sub) == 4 && sub[0] == "k":
		p.object(sub[1], sub[2], sub[3])
	case len(sub) == 1 && sub[0] == "new":
		p.create()
	case len(sub) == 1 && sub[0] == "explain":
		p.explain()
	case len(sub) == 1 && sub[0] == "metrics":
		p.render("metrics", map[string]any{"Title": "Traffic"})
	case len(sub) == 1 && sub[0] == "logs":
		p.render("logs", map[string]any{"Title": "Access log"})
	case len(sub) == 2 && sub[0] == "data" && sub[1] == "top":
		p.topData()
	case len(sub) == 2 && sub[0] == "data" && sub[1] == "logs":
		p.logsData()
	default:
		c.fail(w, r, s, http.StatusNotFound, "No such page.")
	}
}

// pageCtx is one request for a project's page.
type pageCtx struct {
	c       *Console
	w       http.ResponseWriter
	r       *http.Request
	s       *session
	project string
}

func (p *pageCtx) ctx() context.Context { return p.r.Context() }

func (p *pageCtx) render(page string, data map[string]any) {
	p.renderCode(http.StatusOK, page, data)
}

func (p *pageCtx) renderCode(code int, page string, data map[string]any) {
	data["Project"] = p.project
	p.c.render(p.w, p.r, code, page, p.s, data)
}

func (p *pageCtx) fail(code int, msg string) { p.c.fail(p.w, p.r, p.s, code, msg) }

// home lists the session's projects, or goes to the only one.
func (c *Console) home(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.admin {
		http.Redirect(w, r, Prefix+"p/"+s.project+"/", http.StatusSeeOther)
		return
	}
	projects, err := s.api.projects(r.Context(), s)
	if err != nil {
		c.fail(w, r, s, http.StatusBadGateway, "Cannot list projects: "+err.Error())
		return
	}
	c.render(w, r, http.StatusOK, "home", s, map[string]any{"Title": "Projects", "Projects": projects})
}

// overview is a project's front page: its Gateways, what needs attention, object counts and
// live traffic.
func (p *pageCtx) overview() {
	dc, err := p.s.api.dynamic(p.project)
	if err != nil {
		p.fail(http.StatusBadGateway, err.Error())
		return
	}
	ov := overview.Collect(p.ctx(), dc)
	p.render("overview", map[string]any{"Title": "Overview", "Overview": ov})
}

// row is a table row of a kind's list.
type row struct {
	Namespace, Name string
	Cells           []string
	// State is the object's conditions in a word; Problems its conditions that need attention.
	State    string
	Problems []string
}

// list shows a kind's objects with the API's printer columns and each object's state.
func (p *pageCtx) list(plural string) {
	k := kindByPlural(plural)
	if k == nil {
		p.fail(http.StatusNotFound, fmt.Sprintf("No kind %q.", plural))
		return
	}
	t, err := p.s.api.table(p.ctx(), p.project, apiPath(k, ""))
	if err != nil {
		p.fail(http.StatusBadGateway, err.Error())
		return
	}
	var cols []string
	var keep []int
	for i, c := range t.ColumnDefinitions {
		if c.Priority == 0 && c.Name != "Name" {
			cols = append(cols, c.Name)
			keep = append(keep, i)
		}
	}
	rows := make([]row, 0, len(t.Rows))
	for _, tr := range t.Rows {
		var obj unstructured.Unstructured
		if err := obj.UnmarshalJSON(tr.Object.Raw); err != nil {
			continue
		}
		rw := row{Namespace: obj.GetNamespace(), Name: obj.GetName()}
		for _, i := range keep {
			if i < len(tr.Cells) {
				rw.Cells = append(rw.Cells, fmt.Sprint(tr.Cells[i]))
			}
		}
		if k.HasStatus() {
			rw.Problems = overview.Problems(k.GVK.Kind, &obj)
			switch {
			case len(rw.Problems) > 0:
				rw.State = "Needs attention"
			case k.Status != resource.StatusByServer && !overview.Reported(&obj):
				rw.State = "No status yet"
			default:
				rw.State = "OK"
			}
		}
		rows = append(rows, rw)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		return rows[i].Namespace+"/"+rows[i].Name < rows[j].Namespace+"/"+rows[j].Name
	})
	p.render("list", map[string]any{"Title": k.GVK.Kind + "s", "Kind": k, "Columns": cols, "Rows": rows, "HasStatus": k.HasStatus()})
}

// object shows one object (its conditions and YAML) and applies an edit of it.
func (p *pageCtx) object(plural, ns, name string) {
	k := kindByPlural(plural)
	if k == nil {
		p.fail(http.StatusNotFound, fmt.Sprintf("No kind %q.", plural))
		return
	}
	if ns == "_" {
		ns = ""
	}
	dc, err := p.s.api.dynamic(p.project)
	if err != nil {
		p.fail(http.StatusBadGateway, err.Error())
		return
	}
	ri := dc.Resource(k.GVR())
	get := func() (*unstructured.Unstructured, error) {
		if k.Namespaced {
			return ri.Namespace(ns).Get(p.ctx(), name, metav1.GetOptions{})
		}
		return ri.Get(p.ctx(), name, metav1.GetOptions{})
	}
	data := map[string]any{"Title": k.GVK.Kind + " " + name, "Kind": k, "Namespace": ns, "Name": name,
		"ReadOnly": k.GVK.Kind == "Secret", "PathNS": pathNS(ns)}
	if p.r.Method == http.MethodPost {
		if act := p.r.PostFormValue("action"); act == "rollback" || act == "unpin" {
			if k.GVK.Kind != "EdgeFunction" {
				p.fail(http.StatusBadRequest, "Only EdgeFunctions roll back.")
				return
			}
			msg, err := revisions.Rollback(p.ctx(), dc, ns, name, p.r.PostFormValue("to"), act == "unpin")
			if err != nil {
				p.fail(http.StatusUnprocessableEntity, err.Error())
				return
			}
			http.Redirect(p.w, p.r, p.r.URL.Path+"?done="+url.QueryEscape(msg), http.StatusSeeOther)
			return
		}
		if p.r.PostFormValue("action") == "delete" {
			var err error
			if k.Namespaced {
				err = ri.Namespace(ns).Delete(p.ctx(), name, metav1.DeleteOptions{})
			} else {
				err = ri.Delete(p.ctx(), name, metav1.DeleteOptions{})
			}
			if err != nil {
				p.fail(http.StatusBadGateway, err.Error())
				return
			}
			http.Redirect(p.w, p.r, Prefix+"p/"+p.project+"/k/"+plural, http.StatusSeeOther)
			return
		}
		p.apply(data, "object")
		return
	}
	obj, err := get()
	if apierrors.IsNotFound(err) {
		p.fail(http.StatusNotFound, fmt.Sprintf("%s %s not found.", k.GVK.Kind, name))
		return
	} else if err != nil {
		p.fail(http.StatusBadGateway, err.Error())
		return
	}
	data["YAML"] = editableYAML(obj, k.GVK.Kind == "Secret")
	data["Status"] = statusYAML(obj)
	data["Problems"] = overview.Problems(k.GVK.Kind, obj)
	data["Conditions"] = overview.Conditions(obj)
	data["Tables"] = statusTables(obj)
	data["Done"] = p.r.URL.Query().Get("done")
	if p.r.URL.Query().Has("applied") {
		data["Done"] = "Applied."
	}
	if k.GVK.Kind == "EdgeFunction" {
		revs, err := revisions.List(p.ctx(), dc, ns, name)
		if err != nil {
			data["RevisionsError"] = err.Error()
		}
		live, _, _ := unstructured.NestedString(obj.Object, "status", "liveRevision")
		pin, _, _ := unstructured.NestedString(obj.Object, "spec", "liveRevision")
		var rows []revisionRow
		for _, r := range revs {
			rr := revisionRow{Name: r.Name, Number: builder.Number(r), Phase: string(r.Status.Phase), Created: r.CreationTimestamp.UTC().Format(time.RFC3339),
				Live: r.Name == live, Ready: r.Status.Phase == extv1a2.RevisionReady && r.Status.Artifact != nil}
			if a := r.Status.Artifact; a != nil {
				rr.Runtime = a.Runtime
			}
			rows = append(rows, rr)
		}
		data["Revisions"], data["Pinned"] = rows, pin
	}
	if hosts, _, _ := unstructured.NestedStringSlice(obj.Object, "spec", "hostnames"); len(hosts) > 0 && strings.HasSuffix(k.GVK.Kind, "Route") {
		data["ExplainURL"] = "http://" + strings.Replace(hosts[0], "*", "www", 1) + "/"
	}
	p.render("object", data)
}

// revisionRow is an EdgeFunction revision as the function's page lists it.
type revisionRow struct {
	Name, Phase, Runtime, Created string
	Number                        int
	Live, Ready                   bool
}

// statusTable is a list in an object's status (a Backend's endpoints, a TunnelNode's agents)
// drawn as a table.
type statusTable struct {
	Title   string
	Columns []string
	Rows    [][]string
}

// statusTables draws every list of objects in obj's status as a table, except the condition
// lists the Conditions table shows.
func statusTables(obj *unstructured.Unstructured) []statusTable {
	st, _ := obj.Object["status"].(map[string]any)
	var names []string
	for k := range st {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []statusTable
	for _, name := range names {
		if slices.Contains([]string{"conditions", "parents", "ancestors", "listeners"}, name) {
			continue
		}
		items, ok := st[name].([]any)
		if !ok || len(items) == 0 {
			continue
		}
		cols := map[string]bool{}
		for _, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				cols = nil
				break
			}
			for k := range m {
				cols[k] = true
			}
		}
		if len(cols) == 0 {
			continue
		}
		t := statusTable{Title: name}
		for c := range cols {
			t.Columns = append(t.Columns, c)
		}
		sort.Slice(t.Columns, func(i, j int) bool {
			return columnRank(t.Columns[i]) < columnRank(t.Columns[j]) || (columnRank(t.Columns[i]) == columnRank(t.Columns[j]) && t.Columns[i] < t.Columns[j])
		})
		for _, it := range items {
			m := it.(map[string]any)
			var row []string
			for _, c := range t.Columns {
				switch v := m[c].(type) {
				case nil:
					row = append(row, "")
				case string, bool, int64, float64:
					row = append(row, fmt.Sprint(v))
				default:
					b, _ := json.Marshal(v)
					row = append(row, string(b))
				}
			}
			t.Rows = append(t.Rows, row)
		}
		out = append(out, t)
	}
	return out
}

// columnRank puts identifying columns first.
func columnRank(c string) int {
	switch c {
	case "name", "address", "hostname":
		return 0
	case "healthy", "ready", "phase", "state":
		return 1
	}
	return 2
}

func pathNS(ns string) string {
	if ns == "" {
		return "_"
	}
	return ns
}

// create is the YAML editor for a new object.
func (p *pageCtx) create() {
	data := map[string]any{"Title": "Apply YAML"}
	if p.r.Method == http.MethodPost {
		p.apply(data, "new")
		return
	}
	data["YAML"] = newObjectTemplate
	p.render("new", data)
}

const newObjectTemplate = `apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata:
  name: my-route
  namespace: default
spec:
  parentRefs:
  - name: default
  hostnames:
  - my.example.com
  rules:
  - backendRefs:
    - kind: Backend
      group: core.apoxy.dev
      name: my-backend
      port: 8080
`

// apply server-side applies the posted YAML (one object) and either goes to the object or
// shows the editor again with the server's errors at their lines.
func (p *pageCtx) apply(data map[string]any, page string) {
	text := p.r.PostFormValue("yaml")
	data["YAML"] = text
	obj, k, err := parseObject(text)
	if err == nil {
		err = p.serverApply(k, obj)
	}
	if err != nil {
		data["Errors"] = fieldErrors(text, k, err)
		data["Listing"] = listing(text, data["Errors"].([]fieldError))
		p.renderCode(http.StatusUnprocessableEntity, page, data)
		return
	}
	http.Redirect(p.w, p.r, Prefix+"p/"+p.project+"/k/"+k.Plural+"/"+pathNS(obj.GetNamespace())+"/"+obj.GetName()+"?applied=1", http.StatusSeeOther)
}

// editableYAML is an object as one edits it: what the user wrote (no status, no server-kept
// metadata). A Secret's values are never shown.
func editableYAML(obj *unstructured.Unstructured, secret bool) string {
	o := obj.DeepCopy()
	delete(o.Object, "status")
	meta, _ := o.Object["metadata"].(map[string]any)
	for _, f := range []string{"managedFields", "uid", "resourceVersion", "generation", "creationTimestamp", "selfLink"} {
		delete(meta, f)
	}
	if ann, ok := meta["annotations"].(map[string]any); ok {
		delete(ann, "kubectl.kubernetes.io/last-applied-configuration")
		if len(ann) == 0 {
			delete(meta, "annotations")
		}
	}
	if secret {
		for _, f := range []string{"data", "stringData"} {
			if m, ok := o.Object[f].(map[string]any); ok {
				for key, v := range m {
					m[key] = fmt.Sprintf("(hidden: %d characters)", len(fmt.Sprint(v)))
				}
			}
		}
	}
	b, err := yaml.Marshal(o.Object)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func statusYAML(obj *unstructured.Unstructured) string {
	st, ok := obj.Object["status"]
	if !ok {
		return ""
	}
	b, _ := yaml.Marshal(st)
	return string(b)
}

// explain is the explain view: type a URL, see which rule of the project serves it and why the
// others do not.
func (p *pageCtx) explain() {
	q := p.r.URL.Query()
	data := map[string]any{"Title": "Explain a request", "URL": q.Get("url"), "Method": cmpOr(q.Get("method"), "GET"), "Headers": q.Get("headers")}
	if u := q.Get("url"); u != "" {
		dc, err := p.s.api.dynamic(p.project)
		if err != nil {
			p.fail(http.StatusBadGateway, err.Error())
			return
		}
		var headers []string
		for _, l := range strings.Split(q.Get("headers"), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				headers = append(headers, l)
			}
		}
		var b bytes.Buffer
		if err := explain.URL(p.ctx(), dc, &b, u, strings.ToUpper(data["Method"].(string)), headers); err != nil {
			data["Error"] = err.Error()
		}
		data["Result"] = b.String()
	}
	p.render("explain", data)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// render executes a page in the layout.
func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, page string, s *session, data map[string]any) {
	t := c.pages[page]
	if t == nil {
		http.Error(w, "no page "+page, http.StatusInternalServerError)
		return
	}
	if data == nil {
		data = map[string]any{}
	}
	if s != nil {
		data["Session"] = s
		data["CSRF"] = s.csrf
		data["Nav"] = navigation()
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", data); err != nil {
		c.opts.Logger.Error("console page", "page", page, "err", err)
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, code int, msg string) {
	data := map[string]any{"Title": http.StatusText(code), "Message": msg}
	if parts := strings.Split(strings.TrimPrefix(r.URL.Path, Prefix), "/"); len(parts) > 1 && parts[0] == "p" {
		data["Project"] = parts[1]
	}
	c.render(w, r, code, "error", s, data)
}

var funcs = template.FuncMap{
	"lower":    strings.ToLower,
	"list":     func(s ...string) []string { return s },
	"pathNS":   pathNS,
	"contains": slices.Contains[[]string, string],
	"since":    func(t time.Time) string { return time.Since(t).Round(time.Second).String() },
}

// parsePages parses each page with the layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := assets.ReadDir("templates")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(n.Name(), ".html")
		if name == "layout" || name == "editor" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/editor.html", "templates/"+n.Name())
		if err != nil {
			return nil, fmt.Errorf("console: page %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}
