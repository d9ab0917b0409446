package proxy

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
)

// forwarded holds the X-Forwarded-* values for a request, computed from what the client sent.
type forwarded struct{ xff, proto, host string }

func forwardedFor(in *http.Request, scheme string) forwarded {
	f := forwarded{proto: scheme, host: in.Host}
	if in.TLS != nil {
		f.proto = "https"
	}
	if ip := clientIP(in); ip != "" {
		f.xff = ip
		if prior := in.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			f.xff = strings.Join(prior, ", ") + ", " + ip
		}
	}
	return f
}

// Shared single-value slices for constant header values. Header edits replace or append to
// a key's slice (append copies a full slice), never write into it, so sharing is safe.
var (
	valueHTTP  = []string{"http"}
	valueHTTPS = []string{"https"}
	valueEmpty = []string{""}
)

func (f forwarded) apply(h http.Header) {
	vals := [...]string{f.host, f.xff} // one allocation for both new values
	s := vals[:]
	h["X-Forwarded-Host"] = s[0:1:1]
	if f.xff != "" {
		h["X-Forwarded-For"] = s[1:2:2]
	}
	switch f.proto {
	case "http":
		h["X-Forwarded-Proto"] = valueHTTP
	case "https":
		h["X-Forwarded-Proto"] = valueHTTPS
	default:
		h["X-Forwarded-Proto"] = []string{f.proto}
	}
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// newRequestID returns 128 random bits in hex. IDs need to be unique, not secret: the
// runtime's per-thread ChaCha8 generator gives that without a syscall or lock.
func newRequestID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	return hex.EncodeToString(b[:])
}
