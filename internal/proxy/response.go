package proxy

import (
	"net/http"
	"sync/atomic"

	"apoxy.dev/apoxy/internal/proxy/filter"
)

// responseWriter records the status and bytes written, for the access log and timeouts.
type responseWriter struct {
	http.ResponseWriter
	// grpc: the request is gRPC, so errors the proxy answers are gRPC statuses.
	grpc bool
	// x is the route's exchange, whose response hooks run as the head is written (nil
	// before routing).
	x           *filter.Exchange
	code        int
	written     int64
	wroteHeader atomic.Bool
}

func (w *responseWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		if w.wroteHeader.Swap(true) {
			return
		}
		if w.x != nil {
			code = w.x.ResponseHead(w.Header(), code)
		}
		w.code = code
		// A proxy passes the upstream's headers as they are: no Content-Type means none, not
		// one net/http would guess from the body.
		if h := w.Header(); h.Get("Content-Type") == "" {
			h["Content-Type"] = nil
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader.Load() {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += int64(n)
	return n, err
}

func (w *responseWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach Flush, Hijack (WebSocket) and deadlines.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush streams buffered data to the client.
func (w *responseWriter) Flush() {
	if !w.wroteHeader.Load() {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// bufferPool shares 32 KiB copy buffers between requests.
type bufferPool struct{}

var copyBuffers = make(chan []byte, 256)

func (bufferPool) Get() []byte {
	select {
	case b := <-copyBuffers:
		return b
	default:
		return make([]byte, 32<<10)
	}
}

func (bufferPool) Put(b []byte) {
	select {
	case copyBuffers <- b:
	default:
	}
}
