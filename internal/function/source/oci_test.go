package source

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// newRegistry runs go-containerregistry's in-memory registry on loopback and returns its
// host:port. With user set, every request needs that basic auth.
func newRegistry(t *testing.T, user, password string) string {
	t.Helper()
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if user != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// wasmArtifact is a one-layer OCI artifact holding module with the wasm-to-oci media types.
func wasmArtifact(t *testing.T, module []byte) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(module, WasmLayerMediaType))
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, "application/vnd.wasm.config.v1+json")
}

// push writes img to ref (repo:tag on a loopback registry, so plain HTTP), with optional
// basic auth, and returns the pushed manifest's digest.
func push(t *testing.T, ref string, img remote.Taggable, opts ...remote.Option) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	switch v := img.(type) {
	case v1.Image:
		err = remote.Write(r, v, opts...)
	case v1.ImageIndex:
		err = remote.WriteIndex(r, v, opts...)
	}
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.(interface{ Digest() (v1.Hash, error) }).Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// imageLayer is a gzipped tar holding files, as a Docker image layer.
func imageLayer(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: int64(len(data)), Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestOCI(t *testing.T) {
	reg := newRegistry(t, "", "")
	repo := reg + "/team/fn"
	pushed := push(t, repo+":v1", wasmArtifact(t, testModule))
	push(t, repo+":latest", wasmArtifact(t, append(append([]byte{}, testModule...), 0)))
	f := &Fetcher{}
	ctx := context.Background()

	module, digest, err := f.OCI(ctx, repo, "v1", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(module, testModule) || digest != pushed {
		t.Errorf("got %q %s, want the module and %s", module, digest, pushed)
	}
	// The digest fetches the same again.
	if module, digest, err := f.OCI(ctx, repo, pushed, "", ""); err != nil || !bytes.Equal(module, testModule) || digest != pushed {
		t.Errorf("by digest: %q %s %v", module, digest, err)
	}
	// No tag: latest.
	if module, _, err := f.OCI(ctx, repo, "", "", ""); err != nil || len(module) != len(testModule)+1 {
		t.Errorf("latest: %d bytes, %v; want the module pushed as latest", len(module), err)
	}

	_, _, err = f.OCI(ctx, repo, "v2", "", "")
	wantErr(t, err, ErrNotFound, `oci: tag "v2" not found in `+repo)
	_, _, err = f.OCI(ctx, reg+"/team/other", "v1", "", "")
	wantErr(t, err, ErrNotFound, "oci: repository "+reg+"/team/other not found")
	_, _, err = f.OCI(ctx, "Not A Repo", "v1", "", "")
	wantErr(t, err, ErrInvalid, `oci: "Not A Repo" is not a repository name`)

	_, _, err = (&Fetcher{MaxBytes: 4}).OCI(ctx, repo, "v1", "", "")
	wantErr(t, err, ErrTooLarge, "oci: the layer sha256:", "of "+repo+" is larger than the limit of 4 bytes")

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = f.OCI(cctx, repo, "v1", "", "")
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnreachable) {
		t.Errorf("cancelled fetch: got %v, want context.Canceled and ErrUnreachable", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, _, err = f.OCI(ctx, addr+"/team/fn", "v1", "", "")
	wantErr(t, err, ErrUnreachable, "oci: fetching "+addr+"/team/fn: cannot reach "+addr)
}

func TestOCILayouts(t *testing.T) {
	reg := newRegistry(t, "", "")
	f := &Fetcher{}
	ctx := context.Background()
	layer := func(b []byte, mt types.MediaType) v1.Layer { return static.NewLayer(b, mt) }
	image := func(layers ...v1.Layer) v1.Image {
		img, err := mutate.AppendLayers(empty.Image, layers...)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}

	// Envoy/Istio "compat": a Docker image whose one layer holds plugin.wasm.
	compat := image(layer(imageLayer(t, map[string][]byte{"plugin.wasm": testModule, "README": []byte("x")}), types.DockerLayer))
	push(t, reg+"/compat:v1", compat)
	if module, _, err := f.OCI(ctx, reg+"/compat", "v1", "", ""); err != nil || !bytes.Equal(module, testModule) {
		t.Errorf("compat image: %q, %v", module, err)
	}

	// The wasm layer is found among others.
	mixed := image(layer([]byte("{}"), "application/json"), layer(testModule, WasmLayerMediaType))
	push(t, reg+"/mixed:v1", mixed)
	if module, _, err := f.OCI(ctx, reg+"/mixed", "v1", "", ""); err != nil || !bytes.Equal(module, testModule) {
		t.Errorf("mixed layers: %q, %v", module, err)
	}

	// Two layers, neither Wasm.
	two := image(layer([]byte("a"), types.OCILayer), layer([]byte("b"), types.OCILayer))
	push(t, reg+"/two:v1", two)
	_, _, err := f.OCI(ctx, reg+"/two", "v1", "", "")
	wantErr(t, err, ErrInvalid, "oci: "+reg+`/two at tag "v1" has 2 layers (`+string(types.OCILayer)+", "+string(types.OCILayer)+") and none of media type "+WasmLayerMediaType)

	// One layer that is not WebAssembly.
	push(t, reg+"/text:v1", image(layer([]byte("hello, world"), "text/plain")))
	_, _, err = f.OCI(ctx, reg+"/text", "v1", "", "")
	wantErr(t, err, ErrInvalid, "(text/plain) of "+reg+`/text at tag "v1" is not a WebAssembly module: it starts with "hello, world"`)
	push(t, reg+"/nowasm:v1", image(layer(imageLayer(t, map[string][]byte{"app": []byte("ELF")}), types.DockerLayer)))
	_, _, err = f.OCI(ctx, reg+"/nowasm", "v1", "", "")
	wantErr(t, err, ErrInvalid, "an image layer with no .wasm file")

	// An index: its one wasm manifest is taken, and its digest returned.
	wasmImg := wasmArtifact(t, testModule)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: image(layer([]byte("linux"), types.OCILayer)), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: wasmImg, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "wasip1", Architecture: "wasm"}}},
	)
	push(t, reg+"/multi:v1", idx)
	wantDigest, _ := wasmImg.Digest()
	if module, digest, err := f.OCI(ctx, reg+"/multi", "v1", "", ""); err != nil || !bytes.Equal(module, testModule) || digest != wantDigest.String() {
		t.Errorf("index: %q %s %v, want the module and %s", module, digest, err, wantDigest)
	}
	push(t, reg+"/linux:v1", mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: image(layer([]byte("linux"), types.OCILayer)), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}}))
	_, _, err = f.OCI(ctx, reg+"/linux", "v1", "", "")
	wantErr(t, err, ErrInvalid, "is an image index with 0 WebAssembly manifests (architecture wasm or OS wasi) among 1")
}

func TestOCICredentials(t *testing.T) {
	reg := newRegistry(t, "bot", "s3cret")
	repo := reg + "/private/fn"
	push(t, repo+":v1", wasmArtifact(t, testModule), remote.WithAuth(&authn.Basic{Username: "bot", Password: "s3cret"}))
	f := &Fetcher{}
	_, _, err := f.OCI(context.Background(), repo, "v1", "", "")
	wantErr(t, err, ErrDenied, "oci: "+repo+" requires credentials, or refused those given")
	_, _, err = f.OCI(context.Background(), repo, "v1", "bot", "wrong")
	wantErr(t, err, ErrDenied, "requires credentials, or refused those given")
	if module, _, err := f.OCI(context.Background(), repo, "v1", "bot", "s3cret"); err != nil || !bytes.Equal(module, testModule) {
		t.Errorf("with credentials: %q, %v", module, err)
	}
}
