package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testModule is the smallest valid WebAssembly module: the magic and version 1.
var testModule = []byte("\x00asm\x01\x00\x00\x00")

func sha256Hex(b []byte) string {
	d := sha256.Sum256(b)
	return hex.EncodeToString(d[:])
}

func TestURL(t *testing.T) {
	big := append(append([]byte{}, testModule...), make([]byte, 4096)...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fn.wasm":
			w.Write(testModule)
		case "/big.wasm":
			w.Write(big)
		case "/page":
			w.Write([]byte("<html>sign in</html>"))
		case "/slow.wasm":
			w.Write(testModule[:4])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		case "/broken.wasm":
			http.Error(w, "oops", http.StatusBadGateway)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	f := &Fetcher{MaxBytes: 1024}
	ctx := context.Background()

	module, digest, err := f.URL(ctx, srv.URL+"/fn.wasm", "")
	if err != nil {
		t.Fatal(err)
	}
	if string(module) != string(testModule) || digest != "sha256:"+sha256Hex(testModule) {
		t.Errorf("got %q %s, want the module and sha256:%s", module, digest, sha256Hex(testModule))
	}
	if _, _, err := f.URL(ctx, srv.URL+"/fn.wasm", strings.ToUpper(sha256Hex(testModule))); err != nil {
		t.Errorf("matching sha256 (upper case): %v", err)
	}
	if _, _, err := f.URL(ctx, srv.URL+"/fn.wasm", "sha256:"+sha256Hex(testModule)); err != nil {
		t.Errorf("matching sha256 (prefixed): %v", err)
	}

	other := sha256Hex([]byte("x"))
	_, _, err = f.URL(ctx, srv.URL+"/fn.wasm?token=secret", other)
	wantErr(t, err, ErrIntegrity, "url: sha256 mismatch for "+srv.URL+"/fn.wasm: want "+other+", got "+sha256Hex(testModule))
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q shows the query", err)
	}
	_, _, err = f.URL(ctx, srv.URL+"/fn.wasm", "abc")
	wantErr(t, err, ErrInvalid, `url: sha256 "abc" is not 64 hexadecimal digits`)

	_, _, err = f.URL(ctx, srv.URL+"/big.wasm", "")
	wantErr(t, err, ErrTooLarge, "url: the module at "+srv.URL+"/big.wasm is larger than the limit of 1 KiB")
	if _, _, err := (&Fetcher{MaxBytes: int64(len(big))}).URL(ctx, srv.URL+"/big.wasm", ""); err != nil {
		t.Errorf("a module of exactly MaxBytes: %v", err)
	}

	_, _, err = f.URL(ctx, srv.URL+"/page", "")
	wantErr(t, err, ErrInvalid, `url: `+srv.URL+`/page is not a WebAssembly module (it starts with "<html>sign in</h")`)
	_, _, err = f.URL(ctx, srv.URL+"/missing.wasm", "")
	wantErr(t, err, ErrNotFound, "url: "+srv.URL+"/missing.wasm not found (Not Found)")
	_, _, err = f.URL(ctx, srv.URL+"/broken.wasm", "")
	wantErr(t, err, ErrUnreachable, "url: downloading "+srv.URL+"/broken.wasm: "+strings.TrimPrefix(srv.URL, "http://")+" answered 502 Bad Gateway")
	_, _, err = f.URL(ctx, "ftp://example.com/fn.wasm", "")
	wantErr(t, err, ErrInvalid, "is not an http(s) URL")

	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, _, err = f.URL(tctx, srv.URL+"/slow.wasm", "")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrUnreachable) {
		t.Errorf("a download outliving its context: got %v, want DeadlineExceeded and ErrUnreachable", err)
	}
}
