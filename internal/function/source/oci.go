package source

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// WasmLayerMediaType is the media type of the layer holding a module in a WebAssembly OCI
// artifact, as wasm-to-oci and Envoy/Istio's Wasm plugins push it.
const WasmLayerMediaType = "application/vnd.module.wasm.content.layer.v1+wasm"

// wasmLayerMediaTypes are the layer media types taken as a raw module: the wasm-to-oci one,
// then those of the CNCF Wasm artifact layout.
var wasmLayerMediaTypes = []types.MediaType{
	WasmLayerMediaType,
	"application/vnd.wasm.content.layer.v1+wasm",
	"application/wasm",
}

// OCI fetches the WebAssembly module of the artifact repo:tag (tag defaults to latest; a
// sha256:... tag is a digest) from an OCI registry. The tag is resolved once, and the digest
// of the manifest read (sha256:...) is returned with the module, so that a revision can name
// exactly what it runs.
//
// The module is the manifest's layer of a Wasm media type or, failing that, its only layer:
// a raw module, or an image layer (tar, optionally gzipped) holding one .wasm file, the
// "compat" layout of Envoy's and Istio's Wasm plugins. An image index is narrowed to its one
// manifest for the wasm architecture or a wasi OS. Registries on loopback are spoken to over
// plain HTTP.
func (f *Fetcher) OCI(ctx context.Context, repo, tag string, username, password string) (module []byte, digest string, err error) {
	if tag == "" {
		tag = "latest"
	}
	r, err := name.NewRepository(repo)
	if err != nil {
		return nil, "", fail(ErrInvalid, err, "oci: %q is not a repository name: %v", repo, err)
	}
	var opts []name.Option
	if isLoopback(r.RegistryStr()) {
		opts = append(opts, name.Insecure)
	}
	var ref name.Reference
	what := fmt.Sprintf("tag %q", tag)
	if strings.HasPrefix(tag, "sha256:") {
		ref, err = name.NewDigest(repo+"@"+tag, opts...)
		what = "digest " + tag
	} else {
		ref, err = name.NewTag(repo+":"+tag, opts...)
	}
	if err != nil {
		return nil, "", fail(ErrInvalid, err, "oci: %s of %s is not valid: %v", what, repo, err)
	}
	o := &ociFetch{f: f, repo: r.Name(), registry: r.RegistryStr(), what: what}

	// The client's transport, with bodies bounded: manifests and indexes are read whole by
	// the library. (The client's own Timeout does not apply; ctx does.)
	rt := f.boundedClient("oci: a response of " + r.RegistryStr()).Transport
	var auth authn.Authenticator = authn.Anonymous
	if username != "" || password != "" {
		auth = &authn.Basic{Username: username, Password: password}
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(rt),
		remote.WithAuth(auth),
		remote.WithUserAgent("apoxy-edgefunction-fetcher"),
		// The build controller retries a failed build; retrying here too would only delay
		// the error a user is waiting for.
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
	}
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return nil, "", o.error(ctx, err)
	}
	digest = desc.Digest.String()
	var img v1.Image
	if desc.MediaType.IsIndex() {
		img, digest, err = o.fromIndex(ctx, desc)
	} else {
		img, err = desc.Image()
	}
	if err != nil {
		return nil, "", o.error(ctx, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, "", o.error(ctx, err)
	}
	layer, err := o.pickLayer(m)
	if err != nil {
		return nil, "", err
	}
	max := f.maxBytes()
	if layer.Size > max {
		return nil, "", tooLarge(fmt.Sprintf("oci: the layer %s of %s", layer.Digest, o.repo), max)
	}
	l, err := img.LayerByDigest(layer.Digest)
	if err != nil {
		return nil, "", o.error(ctx, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, "", o.error(ctx, err)
	}
	defer rc.Close()
	blob, err := readAll(rc, max, fmt.Sprintf("oci: the layer %s of %s", layer.Digest, o.repo))
	if err != nil {
		return nil, "", o.error(ctx, err)
	}
	if layer.Digest.Algorithm == "sha256" {
		if sum := sha256.Sum256(blob); hex.EncodeToString(sum[:]) != layer.Digest.Hex {
			return nil, "", fail(ErrIntegrity, nil, "oci: the layer of %s does not match its digest: want %s, got sha256:%s", o.repo, layer.Digest, hex.EncodeToString(sum[:]))
		}
	}
	if bytes.HasPrefix(blob, wasmMagic) {
		return blob, digest, nil
	}
	module, instead := wasmFromImageLayer(blob, max)
	if module != nil {
		return module, digest, nil
	}
	if instead == "" {
		instead = "it starts with " + describeStart(blob)
	}
	return nil, "", fail(ErrInvalid, nil, "oci: the layer %s (%s) of %s at %s is not a WebAssembly module: %s", layer.Digest, layer.MediaType, o.repo, o.what, instead)
}

// ociFetch is one OCI fetch's request, for its error messages.
type ociFetch struct {
	f        *Fetcher
	repo     string // registry/repository
	registry string
	what     string // `tag "v1"` or "digest sha256:..."
}

// error explains err from the registry.
func (o *ociFetch) error(ctx context.Context, err error) error {
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	if ctx.Err() != nil {
		return fail(ErrUnreachable, ctx.Err(), "oci: fetching %s: %v", o.repo, ctx.Err())
	}
	var te *transport.Error
	if errors.As(err, &te) {
		codes := map[transport.ErrorCode]bool{}
		for _, d := range te.Errors {
			codes[d.Code] = true
		}
		switch {
		case codes[transport.NameUnknownErrorCode]:
			return fail(ErrNotFound, err, "oci: repository %s not found", o.repo)
		case codes[transport.ManifestUnknownErrorCode] || te.StatusCode == http.StatusNotFound:
			return fail(ErrNotFound, err, "oci: %s not found in %s", o.what, o.repo)
		case codes[transport.UnauthorizedErrorCode] || te.StatusCode == http.StatusUnauthorized:
			return fail(ErrDenied, err, "oci: %s requires credentials, or refused those given", o.repo)
		case codes[transport.DeniedErrorCode] || te.StatusCode == http.StatusForbidden:
			return fail(ErrDenied, err, "oci: access to %s is denied", o.repo)
		case te.StatusCode >= 500 || te.StatusCode == http.StatusTooManyRequests:
			return fail(ErrUnreachable, err, "oci: registry %s answered %d %s", o.registry, te.StatusCode, http.StatusText(te.StatusCode))
		}
		return fail(ErrInvalid, err, "oci: fetching %s at %s: %v", o.repo, o.what, err)
	}
	return transportError(ctx, err, "oci: fetching "+o.repo, o.registry)
}

// fromIndex picks the one manifest of an image index that is WebAssembly (architecture wasm,
// or OS wasi/wasip1) and returns its image and digest.
func (o *ociFetch) fromIndex(ctx context.Context, desc *remote.Descriptor) (v1.Image, string, error) {
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, "", err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, "", err
	}
	var found []v1.Descriptor
	for _, m := range im.Manifests {
		if p := m.Platform; p != nil && (p.Architecture == "wasm" || strings.HasPrefix(p.OS, "wasi")) && m.MediaType.IsImage() {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		return nil, "", fail(ErrInvalid, nil, "oci: %s at %s is an image index with %d WebAssembly manifests (architecture wasm or OS wasi) among %d; want exactly one", o.repo, o.what, len(found), len(im.Manifests))
	}
	img, err := idx.Image(found[0].Digest)
	if err != nil {
		return nil, "", err
	}
	return img, found[0].Digest.String(), nil
}

// pickLayer is the layer holding the module: one of a Wasm media type, else the only layer.
func (o *ociFetch) pickLayer(m *v1.Manifest) (v1.Descriptor, error) {
	for _, mt := range wasmLayerMediaTypes {
		for _, l := range m.Layers {
			if l.MediaType == mt {
				return l, nil
			}
		}
	}
	if len(m.Layers) == 1 {
		return m.Layers[0], nil
	}
	var mts []string
	for _, l := range m.Layers {
		mts = append(mts, string(l.MediaType))
	}
	return v1.Descriptor{}, fail(ErrInvalid, nil, "oci: %s at %s has %d layers (%s) and none of media type %s", o.repo, o.what, len(m.Layers), strings.Join(mts, ", "), WasmLayerMediaType)
}

// wasmFromImageLayer finds the one .wasm file (plugin.wasm preferred) in an image layer, a tar
// optionally gzipped. When there is none it returns nil and, if the layer was an image layer,
// what it holds instead (for the error message).
func wasmFromImageLayer(blob []byte, max int64) (module []byte, instead string) {
	var r io.Reader = bytes.NewReader(blob)
	if bytes.HasPrefix(blob, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, ""
		}
		defer gz.Close()
		r = gz
	}
	tr := tar.NewReader(newLimitedReader(r, max, "the unpacked layer"))
	var names []string
	var modules [][]byte
	for n := 0; n < maxTarEntries; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if n == 0 {
				return nil, "" // not a tar
			}
			return nil, fmt.Sprintf("an image layer that cannot be read (%v)", err)
		}
		if hdr.Typeflag != tar.TypeReg || !strings.HasSuffix(hdr.Name, ".wasm") {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Sprintf("an image layer that cannot be read (%s: %v)", hdr.Name, err)
		}
		if !bytes.HasPrefix(data, wasmMagic) {
			continue
		}
		if path.Base(hdr.Name) == "plugin.wasm" {
			return data, ""
		}
		names = append(names, hdr.Name)
		modules = append(modules, data)
	}
	switch len(modules) {
	case 1:
		return modules[0], ""
	case 0:
		return nil, "an image layer with no .wasm file"
	}
	return nil, fmt.Sprintf("an image layer with %d .wasm files (%s) and no plugin.wasm", len(modules), strings.Join(names, ", "))
}

// isLoopback reports whether a registry host[:port] is on this machine.
func isLoopback(registry string) bool {
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
