package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"apoxy.dev/apoxy/internal/proxy/filter"
)

// removeHopHeaders deletes hop-by-hop fields in place. Header maps are small, so one pass
// over the keys beats a lookup per hop-by-hop name.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				h.Del(f)
			}
		}
	}
	for k := range h {
		switch k {
		case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
			delete(h, k)
		}
	}
}

// forward sends a prepared request upstream (with the route's retries) and streams the
// response to w. It is what httputil.ReverseProxy does for a request that is not an upgrade,
// without its per-request copies: the inbound header map is reused, the upstream's header
// values are handed to the response as they are, and a response of known length is written
// in one piece instead of being flushed after every read.
func (h *routeHandler) forward(w http.ResponseWriter, out *http.Request, a *attempt) {
	// The client's hop-by-hop headers went before routing (cleanInbound); what remains was
	// set by the route's own filters.
	removeHopHeaders(out.Header)
	if a.trailers {
		out.Header["Te"] = []string{"trailers"}
	}
	delete(out.Header, "X-Forwarded-For")
	a.forwarded.apply(out.Header)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = valueEmpty // no Go default User-Agent upstream
	}
	out.Close = false
	if out.ContentLength == 0 {
		out.Body = nil
	}
	resp, err := a.roundTrip(out)
	if err != nil {
		upstreamError(w, a, err)
		return
	}
	defer resp.Body.Close()
	removeHopHeaders(resp.Header)
	dst := w.Header()
	for k, vv := range resp.Header {
		dst[k] = vv
	}
	if a.setCookie != "" {
		dst["Set-Cookie"] = append(dst["Set-Cookie"][:len(dst["Set-Cookie"]):len(dst["Set-Cookie"])], a.setCookie)
	}
	declared := len(resp.Trailer) > 0
	if declared {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		dst["Trailer"] = []string{strings.Join(names, ", ")}
	}
	w.WriteHeader(resp.StatusCode) // the exchange's response hooks edit the head here
	// Bodies of unknown length (chunked streams, server-sent events) are flushed after every
	// read so clients see events as they come; others go out in as few writes as possible.
	stream := resp.ContentLength < 0 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	// A stream may idle for long: when the client goes away, stop waiting on the upstream at
	// once rather than at its next write. (The HTTP/1.1 client watches the client only until
	// the response starts; the full transport watches its context itself.)
	if ab, ok := resp.Body.(interface{ Abort() }); ok && stream && a.ctx != nil {
		stop := context.AfterFunc(a.ctx.Context, ab.Abort)
		defer stop()
	}
	// The stream timeouts end a body that idles or runs too long: abort the upstream read
	// (the HTTP/1.1 client's body, or the transport's context).
	abort := a.cancel
	if ab, ok := resp.Body.(interface{ Abort() }); ok && abort == nil && a.guard != nil {
		abort = ab.Abort
	}
	if err := copyBody(w, resp.Body, stream, a.guard, abort); err != nil {
		a.rec.Error = err.Error()
		if f, why := a.guard.ended(); f != 0 {
			a.flag(f)
			a.rec.Error = why
			if a.trailers && filter.IsGRPC(a.x.Req) {
				// A gRPC client gets a status rather than a broken stream.
				dst[http.TrailerPrefix+"Grpc-Status"] = []string{"4"} // DEADLINE_EXCEEDED
				dst[http.TrailerPrefix+"Grpc-Message"] = []string{url.PathEscape(why)}
				return
			}
			panic(http.ErrAbortHandler)
		}
		if !errors.Is(err, errClientWrite) {
			// The upstream broke off mid-body: abort the client's response too rather than
			// end it as if it were complete.
			panic(http.ErrAbortHandler)
		}
		return
	}
	// Trailers arrive with the end of the body; those not declared up front (gRPC's
	// grpc-status) go out under http.TrailerPrefix, which both servers send as trailers.
	for k, vv := range resp.Trailer {
		if declared {
			dst[k] = vv
		} else {
			dst[http.TrailerPrefix+k] = vv
		}
	}
}

// wantsTrailers reports whether the client asked for trailers ("TE: trailers"), which are passed
// through to the upstream.
func wantsTrailers(h http.Header) bool {
	for _, v := range h["Te"] {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(f), "trailers") {
				return true
			}
		}
	}
	return false
}

var errClientWrite = errors.New("writing to the client failed")

// copyBody copies an upstream body to the client with a pooled buffer. A stream guard (nil:
// none) sees every read, and is started with abort once the body turns out to need more than
// one read: a body read in one piece never arms a timer.
func copyBody(w http.ResponseWriter, body io.Reader, stream bool, g *streamGuard, abort func()) error {
	buf := bufferPool{}.Get()
	defer bufferPool{}.Put(buf)
	var rc *http.ResponseController
	if stream {
		rc = http.NewResponseController(w)
	}
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return errClientWrite
			}
			if stream {
				if err := rc.Flush(); err != nil {
					return errClientWrite
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
		if g != nil {
			if abort != nil {
				g.start(abort)
				abort = nil
			}
			g.touch()
		}
	}
}
