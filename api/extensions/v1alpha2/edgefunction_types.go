package v1alpha2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// EdgeFunction is custom code the gateway runs per request: JavaScript (or TypeScript),
// raw WebAssembly, or Go compiled to WebAssembly. Each change of spec.template becomes an
// immutable EdgeFunctionRevision once its code is fetched and built; the live revision
// serves (the newest built one, or the one spec.liveRevision pins), so a failed build never
// replaces a working one and a rollback is a one-field change. A route uses a function in
// filter mode with an ExtensionRef filter (group extensions.apoxy.dev, kind EdgeFunction), in
// backend mode as a backendRef of that kind.
type EdgeFunction struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   EdgeFunctionSpec   `json:"spec,omitempty"`
	Status EdgeFunctionStatus `json:"status,omitempty"`
}

// EdgeFunctionSpec is a function's code and how it runs.
type EdgeFunctionSpec struct {
	// Template is what each revision is made from: changing it makes a new revision.
	Template EdgeFunctionRevisionSpec `json:"template"`
	// RevisionHistoryLimit is how many revisions are kept besides the live one (default 10;
	// 0-100). Older ones are deleted, oldest first.
	// +optional
	RevisionHistoryLimit *int32 `json:"revisionHistoryLimit,omitempty"`
	// LiveRevision pins the revision that serves, by name (an EdgeFunctionRevision of this
	// function). Empty: the newest revision that built. `apoxy edgefunction rollback` sets it.
	// +optional
	LiveRevision string `json:"liveRevision,omitempty"`
	// DynamicPluginConfig is configuration handed to a Go function at run time (a JSON or
	// YAML object as a string); changing it makes no new revision.
	// +optional
	DynamicPluginConfig string `json:"dynamicPluginConfig,omitempty"`
}

// EdgeFunctionMode says where a function sits on a route.
type EdgeFunctionMode string

const (
	// EdgeFunctionModeFilter runs before the backend: it may answer, or pass the request on
	// (edited), and may see the response.
	EdgeFunctionModeFilter EdgeFunctionMode = "filter"
	// EdgeFunctionModeBackend answers every request itself, replacing the origin.
	EdgeFunctionModeBackend EdgeFunctionMode = "backend"
)

// EdgeFunctionRevisionSpec is one version of a function: its code, mode, environment and
// limits. A revision's spec never changes.
type EdgeFunctionRevisionSpec struct {
	// Mode is filter or backend (default backend).
	// +optional
	Mode EdgeFunctionMode `json:"mode,omitempty"`
	// Code says where the code comes from: exactly one source.
	Code EdgeFunctionCodeSource `json:"code"`
	// Env are environment variables the function reads (env in JavaScript, WASI environ in
	// WebAssembly).
	// +optional
	// +listType=map
	// +listMapKey=name
	Env []EnvVar `json:"env,omitempty"`
	// Runtime are the function's limits and capabilities.
	// +optional
	Runtime *EdgeFunctionRuntime `json:"runtime,omitempty"`
}

// EdgeFunctionCodeSource holds exactly one source of code.
type EdgeFunctionCodeSource struct {
	// JSSource is JavaScript or TypeScript (bundled with esbuild when built).
	// +optional
	JSSource *JavaScriptSource `json:"jsSource,omitempty"`
	// WasmSource is a WebAssembly module speaking the http-wasm handler ABI.
	// +optional
	WasmSource *WasmSource `json:"wasmSource,omitempty"`
	// GoPluginSource is Go: source compiled to wasip1 when built, or a module already built.
	// +optional
	GoPluginSource *GoPluginSource `json:"goPluginSource,omitempty"`
}

// JavaScriptSource is a JavaScript (or TypeScript) function from exactly one of inline
// assets, a Git repository or an npm package. The entrypoint module's default export is
// the handler: `export default { async fetch(request, env, ctx) {...} }`, or, as in the
// seed, `request(req)` returning a Response to answer or null to pass through.
type JavaScriptSource struct {
	// Entrypoint is the module to run, a path among the files (default index.js; for npm,
	// the package's "main").
	// +optional
	Entrypoint string `json:"entrypoint,omitempty"`
	// Assets are the files, inline.
	// +optional
	Assets *SourceAssets `json:"assets,omitempty"`
	// Git is a repository holding the files.
	// +optional
	Git *GitSource `json:"git,omitempty"`
	// Npm is a package on an npm registry.
	// +optional
	Npm *NpmSource `json:"npm,omitempty"`
}

// SourceAssets are source files given inline.
type SourceAssets struct {
	// Files are the files (paths relative, unique; at most 1 MiB in all).
	// +listType=map
	// +listMapKey=path
	Files []SourceFile `json:"files"`
}

// SourceFile is one inline file.
type SourceFile struct {
	Path    string `json:"path"`
	Content string `json:"content"`
}

// GitSource is a Git repository at a branch, a tag or a commit (at most one; none: the
// default branch). The ref is resolved to a commit when built; the revision records it.
type GitSource struct {
	// Repository is the clone URL (https://, http://, ssh://, git@host:path or file://).
	Repository string `json:"repository"`
	// +optional
	Branch string `json:"branch,omitempty"`
	// +optional
	Tag string `json:"tag,omitempty"`
	// Commit is a full or abbreviated (7+) commit hash.
	// +optional
	Commit string `json:"commit,omitempty"`
	// Path is the directory inside the repository the function's files are in.
	// +optional
	Path string `json:"path,omitempty"`
	// CredentialsRef names a Secret with username and password (or token) keys.
	// +optional
	CredentialsRef *LocalObjectReference `json:"credentialsRef,omitempty"`
}

// NpmSource is a package version on an npm registry; its tarball's integrity is checked
// against the registry's record.
type NpmSource struct {
	// Package is the package name (scoped names like @acme/edge allowed).
	Package string `json:"package"`
	// Version is an exact version (1.2.3) or a dist-tag (latest), resolved when built.
	Version string `json:"version"`
	// Registry is the registry's base URL (default https://registry.npmjs.org).
	// +optional
	Registry string `json:"registry,omitempty"`
}

// WasmSource is a raw WebAssembly module.
type WasmSource struct {
	// URL is where the module is downloaded from (https:// or http://).
	URL string `json:"url"`
	// SHA256 is the module's expected digest (hex); a download that differs is refused.
	// +optional
	SHA256 string `json:"sha256,omitempty"`
}

// GoPluginSource is a Go function: source to compile to wasip1 (assets or git), or a built
// module (url or oci).
type GoPluginSource struct {
	// URL is a built module to download.
	// +optional
	URL string `json:"url,omitempty"`
	// OCI is a built module in an OCI registry, resolved once to a digest.
	// +optional
	OCI *OCIImageRef `json:"oci,omitempty"`
	// Assets are Go source files (a main package using apoxy.dev/apoxy/pkg/edgefunc).
	// +optional
	Assets *SourceAssets `json:"assets,omitempty"`
	// Git is a repository holding the Go source.
	// +optional
	Git *GitSource `json:"git,omitempty"`
	// PluginConfig is configuration handed to the plugin (a JSON or YAML object as a string).
	// +optional
	PluginConfig string `json:"pluginConfig,omitempty"`
}

// OCIImageRef is an artifact in an OCI registry.
type OCIImageRef struct {
	// Repo is the repository (registry.example.com/team/fn).
	Repo string `json:"repo"`
	// Tag defaults to latest; resolved to a digest when built.
	// +optional
	Tag string `json:"tag,omitempty"`
	// Credentials for the registry, inline.
	// +optional
	Credentials *OCICredentials `json:"credentials,omitempty"`
	// CredentialsRef names a Secret with username and password keys.
	// +optional
	CredentialsRef *LocalObjectReference `json:"credentialsRef,omitempty"`
}

// OCICredentials are a registry's username and password (or passwordData, base64).
type OCICredentials struct {
	Username string `json:"username,omitempty"`
	// +optional
	Password string `json:"password,omitempty"`
	// +optional
	PasswordData []byte `json:"passwordData,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	Name string `json:"name"`
}

// EnvVar is one environment variable.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// EdgeFunctionRuntime are a function's limits and capabilities.
type EdgeFunctionRuntime struct {
	// Timeout preempts one invocation (default 30s; at most 5m).
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// Port is accepted for compatibility with functions that listen on a port (default
	// 8080); functions here are invoked directly and do not listen.
	// +optional
	Port *int32 `json:"port,omitempty"`
	// Capabilities are what the function may use (each defaults to true).
	// +optional
	Capabilities *RuntimeCapabilities `json:"capabilities,omitempty"`
}

// RuntimeCapabilities turn a function's access to outbound fetch and its key-value store
// on or off.
type RuntimeCapabilities struct {
	// +optional
	FetchAPI *bool `json:"fetchAPI,omitempty"`
	// +optional
	KV *bool `json:"kv,omitempty"`
}

// EdgeFunctionStatus is what serves and why.
type EdgeFunctionStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// LiveRevision is the revision serving requests.
	// +optional
	LiveRevision string `json:"liveRevision,omitempty"`
	// LatestRevision is the revision of the current template (building, built or failed).
	// +optional
	LatestRevision string `json:"latestRevision,omitempty"`
	// Conditions: Ready (a revision serves), Built (the latest revision built; its message
	// is the build error, with file and line).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// EdgeFunctionList is a list of EdgeFunctions.
type EdgeFunctionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EdgeFunction `json:"items"`
}

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// EdgeFunctionRevision is one immutable, content-addressed version of an EdgeFunction: its
// template when the revision was made, and (in status) the built artifact's digest. It is
// named <function>-<hash of the template>, owned by its function, and made by Apoxy.
type EdgeFunctionRevision struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   EdgeFunctionRevisionSpec   `json:"spec,omitempty"`
	Status EdgeFunctionRevisionStatus `json:"status,omitempty"`
}

// EdgeFunctionRevisionPhase is where a revision's build is.
type EdgeFunctionRevisionPhase string

const (
	RevisionPending  EdgeFunctionRevisionPhase = "Pending"
	RevisionBuilding EdgeFunctionRevisionPhase = "Building"
	RevisionReady    EdgeFunctionRevisionPhase = "Ready"
	RevisionFailed   EdgeFunctionRevisionPhase = "Failed"
)

// EdgeFunctionRevisionStatus is a revision's build.
type EdgeFunctionRevisionStatus struct {
	// +optional
	Phase EdgeFunctionRevisionPhase `json:"phase,omitempty"`
	// Artifact is the built code's digest (sha256:...) and runtime (js or wasm).
	// +optional
	Artifact *FunctionArtifact `json:"artifact,omitempty"`
	// Source records what the source resolved to (a Git commit, an npm tarball's integrity,
	// an OCI digest).
	// +optional
	Source string `json:"source,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// FunctionArtifact is a built function.
type FunctionArtifact struct {
	Digest  string `json:"digest"`
	Runtime string `json:"runtime"`
	Size    int64  `json:"size"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// EdgeFunctionRevisionList is a list of EdgeFunctionRevisions.
type EdgeFunctionRevisionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EdgeFunctionRevision `json:"items"`
}
