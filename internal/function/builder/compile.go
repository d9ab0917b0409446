package builder

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	extv1a2 "apoxy.dev/apoxy/api/extensions/v1alpha2"
	"apoxy.dev/apoxy/internal/function/build"
	"apoxy.dev/apoxy/internal/function/source"
)

// Secrets reads a Secret of the revision's namespace by name (credentialsRef); ok false when
// there is none.
type Secrets func(name string) (data map[string][]byte, ok bool)

// Compiler fetches a revision's code and builds it: JavaScript and TypeScript (inline, from
// Git or from npm) bundled by esbuild into one ES module for the JS runtime; Go source
// (inline or from Git) compiled to wasip1 by the local Go toolchain; WebAssembly (a URL, or
// an OCI artifact resolved once to its digest) as it is.
type Compiler struct {
	// Fetch fetches Git, npm, OCI and URL sources (nil: NewFetcher(false)).
	Fetch *source.Fetcher
	// Go configures Go builds (the toolchain, its cache).
	Go build.GoOptions
}

// NewFetcher returns a source fetcher. Without private it reaches public addresses only and
// refuses file:// repositories: a tenant's function source must not read the server's own
// network or disk (apoxy server); with it (apoxy dev, tests) loopback and private addresses
// and file:// are allowed.
func NewFetcher(private bool) *source.Fetcher {
	f := &source.Fetcher{AllowFile: private}
	if !private {
		d := &net.Dialer{Timeout: 10 * time.Second, Control: publicOnly}
		f.HTTPClient = &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, DialContext: d.DialContext, ForceAttemptHTTP2: true,
			TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 30 * time.Second,
		}}
	}
	return f
}

// errPrivateAddress refuses a source fetch to a non-public address.
var errPrivateAddress = errors.New("function sources may be fetched from public addresses only (apoxy server --function-sources-private allows private ones)")

// publicOnly refuses connections to loopback, private, link-local and unspecified addresses
// (checked on the address actually dialled, after DNS).
func publicOnly(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return err
	}
	a := ap.Addr().Unmap()
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified() || a.IsMulticast() ||
		netip.MustParsePrefix("100.64.0.0/10").Contains(a) {
		return fmt.Errorf("%s: %w", a, errPrivateAddress)
	}
	return nil
}

// Compile builds spec's code.
func (c *Compiler) Compile(ctx context.Context, spec *extv1a2.EdgeFunctionRevisionSpec, secrets Secrets) (*Output, error) {
	f := c.Fetch
	if f == nil {
		f = NewFetcher(false)
	}
	code := spec.Code
	switch {
	case code.JSSource != nil:
		js := code.JSSource
		entry := js.Entrypoint
		var files []build.File
		var src string
		switch {
		case js.Assets != nil:
			files = inlineFiles(js.Assets)
		case js.Git != nil:
			ref, err := gitRef(js.Git, secrets)
			if err != nil {
				return nil, fmt.Errorf("spec.template.code.jsSource.git: %w", err)
			}
			var commit string
			if files, commit, err = f.Git(ctx, ref); err != nil {
				return nil, err
			}
			src = "git " + js.Git.Repository + "@" + commit
		case js.Npm != nil:
			pkg, err := f.Npm(ctx, js.Npm.Registry, js.Npm.Package, js.Npm.Version)
			if err != nil {
				return nil, err
			}
			files, src = pkg.Files, "npm "+pkg.Name+"@"+pkg.Version+" "+pkg.Integrity
			if entry == "" {
				entry = pkg.Main
			}
		default:
			return nil, errors.New("spec.template.code.jsSource: give assets, git or npm")
		}
		if entry == "" {
			entry = "index.js"
		}
		out, err := build.JSBundle(files, entry)
		if err != nil {
			return nil, err
		}
		return &Output{Code: out, Runtime: "js", Source: src}, nil
	case code.WasmSource != nil:
		w := code.WasmSource
		mod, digest, err := f.URL(ctx, w.URL, w.SHA256)
		if err != nil {
			return nil, err
		}
		return &Output{Code: mod, Runtime: "wasm", Source: "url " + w.URL + " " + digest}, nil
	case code.GoPluginSource != nil:
		g := code.GoPluginSource
		switch {
		case g.URL != "":
			mod, digest, err := f.URL(ctx, g.URL, "")
			if err != nil {
				return nil, err
			}
			return &Output{Code: mod, Runtime: "wasm", Source: "url " + g.URL + " " + digest}, nil
		case g.OCI != nil:
			user, pass, err := ociCredentials(g.OCI, secrets)
			if err != nil {
				return nil, fmt.Errorf("spec.template.code.goPluginSource.oci: %w", err)
			}
			mod, digest, err := f.OCI(ctx, g.OCI.Repo, g.OCI.Tag, user, pass)
			if err != nil {
				return nil, err
			}
			return &Output{Code: mod, Runtime: "wasm", Source: "oci " + g.OCI.Repo + "@" + digest}, nil
		case g.Assets != nil:
			mod, err := build.GoWasm(ctx, inlineFiles(g.Assets), c.Go)
			if err != nil {
				return nil, err
			}
			return &Output{Code: mod, Runtime: "wasm"}, nil
		case g.Git != nil:
			ref, err := gitRef(g.Git, secrets)
			if err != nil {
				return nil, fmt.Errorf("spec.template.code.goPluginSource.git: %w", err)
			}
			files, commit, err := f.Git(ctx, ref)
			if err != nil {
				return nil, err
			}
			mod, err := build.GoWasm(ctx, files, c.Go)
			if err != nil {
				return nil, err
			}
			return &Output{Code: mod, Runtime: "wasm", Source: "git " + g.Git.Repository + "@" + commit}, nil
		}
		return nil, errors.New("spec.template.code.goPluginSource: give url, oci, assets or git")
	}
	return nil, errors.New("spec.template.code: no source")
}

func gitRef(g *extv1a2.GitSource, secrets Secrets) (source.GitRef, error) {
	ref := source.GitRef{Repository: g.Repository, Branch: g.Branch, Tag: g.Tag, Commit: g.Commit, Path: g.Path}
	if g.CredentialsRef != nil {
		data, ok := lookup(secrets, g.CredentialsRef.Name)
		if !ok {
			return ref, fmt.Errorf("credentialsRef: Secret %q not found", g.CredentialsRef.Name)
		}
		ref.Username = string(data["username"])
		ref.Password = string(data["password"])
		if ref.Password == "" {
			ref.Password = string(data["token"])
		}
	}
	return ref, nil
}

func ociCredentials(o *extv1a2.OCIImageRef, secrets Secrets) (user, pass string, err error) {
	if c := o.Credentials; c != nil {
		pass = c.Password
		if pass == "" {
			pass = string(c.PasswordData)
		}
		return c.Username, pass, nil
	}
	if o.CredentialsRef != nil {
		data, ok := lookup(secrets, o.CredentialsRef.Name)
		if !ok {
			return "", "", fmt.Errorf("credentialsRef: Secret %q not found", o.CredentialsRef.Name)
		}
		return string(data["username"]), string(data["password"]), nil
	}
	return "", "", nil
}

func lookup(secrets Secrets, name string) (map[string][]byte, bool) {
	if secrets == nil {
		return nil, false
	}
	return secrets(name)
}

func inlineFiles(a *extv1a2.SourceAssets) []build.File {
	out := make([]build.File, len(a.Files))
	for i, f := range a.Files {
		out[i] = build.File{Path: f.Path, Content: []byte(f.Content)}
	}
	return out
}
