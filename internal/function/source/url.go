package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
)

// URL downloads the WebAssembly module at rawURL (http or https) and returns it with its
// digest, sha256:<hex>. When sha256hex is given (64 hex digits, optionally prefixed with
// sha256:), a module with another digest is refused with ErrIntegrity; so is one that is
// not WebAssembly (an error page served with 200, say), with ErrInvalid.
func (f *Fetcher) URL(ctx context.Context, rawURL, sha256hex string) (module []byte, digest string, err error) {
	shown := redactURL(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, "", fail(ErrInvalid, err, "url: %q is not an http(s) URL", shown)
	}
	var want []byte
	if sha256hex != "" {
		want, err = hex.DecodeString(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(sha256hex)), "sha256:"))
		if err != nil || len(want) != sha256.Size {
			return nil, "", fail(ErrInvalid, err, "url: sha256 %q is not 64 hexadecimal digits", sha256hex)
		}
	}
	what := "url: downloading " + shown
	body, err := f.get(ctx, rawURL, "application/wasm, */*", what, func(code int) string {
		if code == http.StatusNotFound || code == http.StatusGone {
			return "url: " + shown + " not found (" + http.StatusText(code) + ")"
		}
		return ""
	})
	if err != nil {
		return nil, "", err
	}
	defer body.Close()
	module, err = readAll(body, f.maxBytes(), "url: the module at "+shown)
	if err != nil {
		return nil, "", transportError(ctx, err, what, u.Host)
	}
	sum := sha256.Sum256(module)
	if want != nil && !bytes.Equal(sum[:], want) {
		return nil, "", fail(ErrIntegrity, nil, "url: sha256 mismatch for %s: want %s, got %s", shown, hex.EncodeToString(want), hex.EncodeToString(sum[:]))
	}
	if !bytes.HasPrefix(module, wasmMagic) {
		return nil, "", fail(ErrInvalid, nil, "url: %s is not a WebAssembly module (it starts with %s)", shown, describeStart(module))
	}
	return module, "sha256:" + hex.EncodeToString(sum[:]), nil
}
