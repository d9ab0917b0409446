package v1alpha2

import (
	"cmp"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Edge-function defaults and bounds.
const (
	DefaultRevisionHistoryLimit = 10
	maxRevisionHistoryLimit     = 100
	DefaultFunctionTimeout      = 30 * time.Second
	maxFunctionTimeout          = 5 * time.Minute
	DefaultFunctionPort         = 8080
	// maxInlineAssets bounds a function's inline files in all, so a revision stays a
	// reasonable object to store.
	maxInlineAssets = 1 << 20
	maxEnvVars      = 128
)

// SetDefaultsEdgeFunction fills in the mode, runtime and history limit.
func SetDefaultsEdgeFunction(f *EdgeFunction) {
	if f.Spec.RevisionHistoryLimit == nil {
		v := int32(DefaultRevisionHistoryLimit)
		f.Spec.RevisionHistoryLimit = &v
	}
	SetDefaultsEdgeFunctionRevisionSpec(&f.Spec.Template)
}

// SetDefaultsEdgeFunctionRevision is SetDefaultsEdgeFunction for a revision's spec.
func SetDefaultsEdgeFunctionRevision(r *EdgeFunctionRevision) {
	SetDefaultsEdgeFunctionRevisionSpec(&r.Spec)
}

// SetDefaultsEdgeFunctionRevisionSpec defaults a template: mode backend, timeout 30s, port
// 8080, both capabilities on, the JavaScript entrypoint index.js for inline assets.
func SetDefaultsEdgeFunctionRevisionSpec(s *EdgeFunctionRevisionSpec) {
	if s.Mode == "" {
		s.Mode = EdgeFunctionModeBackend
	}
	if js := s.Code.JSSource; js != nil && js.Entrypoint == "" && js.Npm == nil {
		js.Entrypoint = "index.js"
	}
	if s.Runtime == nil {
		s.Runtime = &EdgeFunctionRuntime{}
	}
	rt := s.Runtime
	if rt.Timeout == nil {
		rt.Timeout = &metav1.Duration{Duration: DefaultFunctionTimeout}
	}
	if rt.Port == nil {
		p := int32(DefaultFunctionPort)
		rt.Port = &p
	}
	if rt.Capabilities == nil {
		rt.Capabilities = &RuntimeCapabilities{}
	}
	t := true
	if rt.Capabilities.FetchAPI == nil {
		rt.Capabilities.FetchAPI = &t
	}
	if rt.Capabilities.KV == nil {
		rt.Capabilities.KV = &t
	}
}

// ValidateEdgeFunction returns every problem of a function, each naming its field.
func ValidateEdgeFunction(f *EdgeFunction) field.ErrorList {
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if l := f.Spec.RevisionHistoryLimit; l != nil && (*l < 0 || *l > maxRevisionHistoryLimit) {
		errs = append(errs, field.Invalid(spec.Child("revisionHistoryLimit"), *l, fmt.Sprintf("must be between 0 and %d", maxRevisionHistoryLimit)))
	}
	if r := f.Spec.LiveRevision; r != "" && !strings.HasPrefix(r, f.Name+"-") {
		errs = append(errs, field.Invalid(spec.Child("liveRevision"), r, fmt.Sprintf("must name a revision of this function (%s-<hash>, see `apoxy get edgefunctionrevisions`)", f.Name)))
	}
	if c := f.Spec.DynamicPluginConfig; c != "" && !looksLikeObject(c) {
		errs = append(errs, field.Invalid(spec.Child("dynamicPluginConfig"), c, "must be a JSON or YAML object"))
	}
	return append(errs, ValidateEdgeFunctionRevisionSpec(&f.Spec.Template, spec.Child("template"))...)
}

// ValidateEdgeFunctionRevision checks a revision, and that its spec did not change.
func ValidateEdgeFunctionRevision(r, old *EdgeFunctionRevision) field.ErrorList {
	if old != nil && !apiequality.Semantic.DeepEqual(r.Spec, old.Spec) {
		return field.ErrorList{field.Forbidden(field.NewPath("spec"), "a revision is immutable: change the EdgeFunction's spec.template to make a new one")}
	}
	return ValidateEdgeFunctionRevisionSpec(&r.Spec, field.NewPath("spec"))
}

// ValidateEdgeFunctionRevisionSpec checks a template: one source, its fields, env, runtime.
func ValidateEdgeFunctionRevisionSpec(s *EdgeFunctionRevisionSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch s.Mode {
	case "", EdgeFunctionModeFilter, EdgeFunctionModeBackend:
	default:
		errs = append(errs, field.NotSupported(p.Child("mode"), s.Mode, []string{string(EdgeFunctionModeFilter), string(EdgeFunctionModeBackend)}))
	}
	errs = append(errs, validateCode(&s.Code, p.Child("code"))...)
	seen := map[string]bool{}
	if len(s.Env) > maxEnvVars {
		errs = append(errs, field.TooMany(p.Child("env"), len(s.Env), maxEnvVars))
	}
	for i, e := range s.Env {
		ep := p.Child("env").Index(i).Child("name")
		switch {
		case !envName.MatchString(e.Name):
			errs = append(errs, field.Invalid(ep, e.Name, "must be letters, digits and '_', not starting with a digit"))
		case seen[e.Name]:
			errs = append(errs, field.Duplicate(ep, e.Name))
		}
		seen[e.Name] = true
	}
	if rt := s.Runtime; rt != nil {
		rp := p.Child("runtime")
		if t := rt.Timeout; t != nil && (t.Duration <= 0 || t.Duration > maxFunctionTimeout) {
			errs = append(errs, field.Invalid(rp.Child("timeout"), t.Duration.String(), fmt.Sprintf("must be more than 0 and at most %s", maxFunctionTimeout)))
		}
		if port := rt.Port; port != nil && (*port < 1 || *port > 65535) {
			errs = append(errs, field.Invalid(rp.Child("port"), *port, "must be 1-65535"))
		}
	}
	return errs
}

var (
	envName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	npmName     = regexp.MustCompile(`^(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$`)
	npmVersion  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+_-]*$`)
	gitCommit   = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
	sha256Hex   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	scpLikeRepo = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$`)
)

func validateCode(c *EdgeFunctionCodeSource, p *field.Path) field.ErrorList {
	var set []string
	if c.JSSource != nil {
		set = append(set, "jsSource")
	}
	if c.WasmSource != nil {
		set = append(set, "wasmSource")
	}
	if c.GoPluginSource != nil {
		set = append(set, "goPluginSource")
	}
	if len(set) != 1 {
		return field.ErrorList{field.Invalid(p, strings.Join(set, ", "), "give exactly one of jsSource, wasmSource and goPluginSource")}
	}
	var errs field.ErrorList
	switch {
	case c.JSSource != nil:
		js, jp := c.JSSource, p.Child("jsSource")
		errs = append(errs, exactlyOne(jp, []string{"assets", "git", "npm"}, js.Assets != nil, js.Git != nil, js.Npm != nil)...)
		if js.Entrypoint != "" {
			if msg := relPath(js.Entrypoint); msg != "" {
				errs = append(errs, field.Invalid(jp.Child("entrypoint"), js.Entrypoint, msg))
			}
		}
		if js.Assets != nil {
			errs = append(errs, validateAssets(js.Assets, jp.Child("assets"))...)
			if e := cmp.Or(js.Entrypoint, "index.js"); !hasFile(js.Assets, e) {
				errs = append(errs, field.Invalid(jp.Child("entrypoint"), e, "is not one of assets.files[].path"))
			}
		}
		if js.Git != nil {
			errs = append(errs, validateGit(js.Git, jp.Child("git"))...)
		}
		if n := js.Npm; n != nil {
			np := jp.Child("npm")
			if !npmName.MatchString(n.Package) || len(n.Package) > 214 {
				errs = append(errs, field.Invalid(np.Child("package"), n.Package, "must be an npm package name (lower case; @scope/name allowed)"))
			}
			if !npmVersion.MatchString(n.Version) {
				errs = append(errs, field.Invalid(np.Child("version"), n.Version, "must be a version (1.2.3) or a dist-tag (latest)"))
			}
			if n.Registry != "" {
				errs = append(errs, httpURL(np.Child("registry"), n.Registry)...)
			}
		}
	case c.WasmSource != nil:
		w, wp := c.WasmSource, p.Child("wasmSource")
		errs = append(errs, httpURL(wp.Child("url"), w.URL)...)
		if w.SHA256 != "" && !sha256Hex.MatchString(w.SHA256) {
			errs = append(errs, field.Invalid(wp.Child("sha256"), w.SHA256, "must be 64 lower-case hex digits"))
		}
	case c.GoPluginSource != nil:
		g, gp := c.GoPluginSource, p.Child("goPluginSource")
		errs = append(errs, exactlyOne(gp, []string{"url", "oci", "assets", "git"}, g.URL != "", g.OCI != nil, g.Assets != nil, g.Git != nil)...)
		if g.URL != "" {
			errs = append(errs, httpURL(gp.Child("url"), g.URL)...)
		}
		if o := g.OCI; o != nil {
			op := gp.Child("oci")
			if o.Repo == "" || strings.Contains(o.Repo, "://") || strings.ContainsAny(o.Repo, " @") {
				errs = append(errs, field.Invalid(op.Child("repo"), o.Repo, "must be a repository like registry.example.com/team/fn (no scheme, tag or digest)"))
			}
			if o.Credentials != nil && o.CredentialsRef != nil {
				errs = append(errs, field.Invalid(op, "credentials, credentialsRef", "give at most one of credentials and credentialsRef"))
			}
		}
		if g.Assets != nil {
			errs = append(errs, validateAssets(g.Assets, gp.Child("assets"))...)
		}
		if g.Git != nil {
			errs = append(errs, validateGit(g.Git, gp.Child("git"))...)
		}
		if c := g.PluginConfig; c != "" && !looksLikeObject(c) {
			errs = append(errs, field.Invalid(gp.Child("pluginConfig"), c, "must be a JSON or YAML object"))
		}
	}
	return errs
}

func exactlyOne(p *field.Path, names []string, set ...bool) field.ErrorList {
	var got []string
	for i, s := range set {
		if s {
			got = append(got, names[i])
		}
	}
	if len(got) == 1 {
		return nil
	}
	return field.ErrorList{field.Invalid(p, strings.Join(got, ", "), "give exactly one of "+strings.Join(names, ", "))}
}

func validateAssets(a *SourceAssets, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(a.Files) == 0 {
		return field.ErrorList{field.Required(p.Child("files"), "give at least one file")}
	}
	seen, total := map[string]bool{}, 0
	for i, f := range a.Files {
		fp := p.Child("files").Index(i).Child("path")
		if msg := relPath(f.Path); msg != "" {
			errs = append(errs, field.Invalid(fp, f.Path, msg))
		} else if seen[path.Clean(f.Path)] {
			errs = append(errs, field.Duplicate(fp, f.Path))
		}
		seen[path.Clean(f.Path)] = true
		total += len(f.Content)
	}
	if total > maxInlineAssets {
		errs = append(errs, field.TooLong(p.Child("files"), total, maxInlineAssets))
	}
	return errs
}

func hasFile(a *SourceAssets, name string) bool {
	for _, f := range a.Files {
		if path.Clean(f.Path) == path.Clean(name) {
			return true
		}
	}
	return false
}

// relPath says what is wrong with a path inside a function's files ("" nothing).
func relPath(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case strings.HasPrefix(s, "/"):
		return "must be relative"
	case strings.Contains(s, "\\") || strings.ContainsRune(s, 0):
		return "must use '/' and no NUL"
	}
	for _, seg := range strings.Split(s, "/") {
		if seg == ".." {
			return `must not contain ".."`
		}
	}
	return ""
}

func validateGit(g *GitSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if msg := gitRepo(g.Repository); msg != "" {
		errs = append(errs, field.Invalid(p.Child("repository"), g.Repository, msg))
	}
	n := 0
	for _, s := range []string{g.Branch, g.Tag, g.Commit} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		errs = append(errs, field.Invalid(p, fmt.Sprintf("branch=%q tag=%q commit=%q", g.Branch, g.Tag, g.Commit), "give at most one of branch, tag and commit"))
	}
	if g.Commit != "" && !gitCommit.MatchString(g.Commit) {
		errs = append(errs, field.Invalid(p.Child("commit"), g.Commit, "must be 7-64 lower-case hex digits"))
	}
	if g.Path != "" {
		if msg := relPath(g.Path); msg != "" {
			errs = append(errs, field.Invalid(p.Child("path"), g.Path, msg))
		}
	}
	return errs
}

func gitRepo(s string) string {
	if scpLikeRepo.MatchString(s) {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" && u.Scheme != "file" {
		return "must be a clone URL (https://host/repo.git, ssh://..., git@host:repo.git or file:///path)"
	}
	switch u.Scheme {
	case "https", "http", "ssh", "git", "file":
		return ""
	}
	return fmt.Sprintf("scheme %q is not supported (https, http, ssh, git, file)", u.Scheme)
}

func httpURL(p *field.Path, s string) field.ErrorList {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return field.ErrorList{field.Invalid(p, s, "must be an http:// or https:// URL")}
	}
	return nil
}

// looksLikeObject accepts a JSON object or a YAML mapping (a first line with "key:").
func looksLikeObject(s string) bool {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "{") {
		return strings.HasSuffix(t, "}")
	}
	first, _, _ := strings.Cut(t, "\n")
	k, _, ok := strings.Cut(first, ":")
	return ok && k != "" && !strings.ContainsAny(k, "[]{}")
}
