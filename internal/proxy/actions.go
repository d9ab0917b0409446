package proxy

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// redirect answers with a Location built as Gateway API's RequestRedirect filter defines: the
// scheme, hostname, port and path default to the request's; a port equal to the scheme's
// default is left out.
func (h *routeHandler) redirect(w http.ResponseWriter, r *http.Request) {
	rd := h.route.Redirect
	scheme := h.listenerScheme
	if r.TLS != nil {
		scheme = "https"
	}
	if rd.Scheme != "" {
		scheme = rd.Scheme
	}
	host := normalizeHost(r.Host)
	if rd.Hostname != "" {
		host = rd.Hostname
	}
	port := int(rd.Port)
	if port == 0 {
		if rd.Scheme != "" {
			port = defaultPortFor(scheme) // a scheme change without a port implies the scheme's port
		} else if _, p, err := net.SplitHostPort(r.Host); err == nil {
			port, _ = strconv.Atoi(p)
		} else {
			port = int(h.listenerPort)
		}
	}
	// Location carries the escaped path: decoded bytes (NUL, %FF, "%3F" read as '?') would
	// change what it names or break the header.
	path := r.URL.EscapedPath()
	if rd.Path != nil {
		path = (&url.URL{Path: h.rewritePath(r.URL.Path, rd.Path)}).EscapedPath()
	}
	loc := scheme + "://" + host
	if port != 0 && port != defaultPortFor(scheme) {
		loc += ":" + strconv.Itoa(port)
	}
	loc += path
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(rd.StatusCode)
}

func defaultPortFor(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

func (h *routeHandler) directResponse(w http.ResponseWriter) {
	d := h.route.DirectResponse
	for _, hp := range d.Headers {
		w.Header().Add(hp.Name, hp.Value)
	}
	for _, m := range h.respHeaders {
		applyHeaders(w.Header(), m)
	}
	if d.ContentType != "" {
		w.Header().Set("Content-Type", d.ContentType)
	} else if d.Body != "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(d.Body)))
	w.WriteHeader(d.StatusCode)
	io.WriteString(w, d.Body)
}

// handleCORS answers preflight requests itself and adds CORS headers to actual ones. It
// returns true when the request was answered. A preflight from an origin that is not allowed
// is answered too, without CORS headers, so the browser refuses the actual request.
func (h *routeHandler) handleCORS(w http.ResponseWriter, r *http.Request) bool {
	c := h.cors
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if !originAllowed(c.AllowOrigins, origin) {
		if preflight {
			w.WriteHeader(http.StatusNoContent)
			return true
		}
		return false
	}
	hdr := w.Header()
	if slices.Contains(c.AllowOrigins, "*") && !c.AllowCredentials {
		hdr.Set("Access-Control-Allow-Origin", "*")
	} else {
		hdr.Set("Access-Control-Allow-Origin", origin)
		hdr.Add("Vary", "Origin")
	}
	if c.AllowCredentials {
		hdr.Set("Access-Control-Allow-Credentials", "true")
	}
	if len(c.ExposeHeaders) > 0 {
		hdr.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ", "))
	}
	if !preflight {
		return false
	}
	methods := strings.Join(c.AllowMethods, ", ")
	if slices.Contains(c.AllowMethods, "*") {
		methods = r.Header.Get("Access-Control-Request-Method")
	}
	if methods != "" {
		hdr.Set("Access-Control-Allow-Methods", methods)
	}
	if len(c.AllowHeaders) > 0 {
		allowed := strings.Join(c.AllowHeaders, ", ")
		if slices.Contains(c.AllowHeaders, "*") {
			allowed = r.Header.Get("Access-Control-Request-Headers")
		}
		if allowed != "" {
			hdr.Set("Access-Control-Allow-Headers", allowed)
		}
	}
	if c.MaxAge > 0 {
		hdr.Set("Access-Control-Max-Age", strconv.Itoa(int(time.Duration(c.MaxAge)/time.Second)))
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}

// originAllowed matches an Origin against the allow list: "*", exact origins, and origins with
// a wildcard host label ("https://*.example.com").
func originAllowed(allowed []string, origin string) bool {
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(a, origin) {
			return true
		}
		if i := strings.Index(a, "://*."); i >= 0 {
			scheme, suffix := a[:i+3], a[i+4:]
			if strings.HasPrefix(origin, scheme) && strings.HasSuffix(origin, suffix) && len(origin) > len(scheme)+len(suffix) {
				return true
			}
		}
	}
	return false
}

// maxMirrorBody bounds how much of a request body is buffered to mirror it.
const maxMirrorBody = 1 << 20

// mirror sends a copy of the request, fire-and-forget, to each mirror backend chosen by its
// percentage. Bodies up to 1 MiB are buffered for the copy; larger ones are mirrored without body.
func (h *routeHandler) mirror(g *graph, out *http.Request) {
	var body []byte
	bodyOK := out.Body == nil || out.Body == http.NoBody
	if !bodyOK && out.ContentLength >= 0 && out.ContentLength <= maxMirrorBody {
		b, err := io.ReadAll(io.LimitReader(out.Body, maxMirrorBody+1))
		out.Body.Close()
		out.Body = io.NopCloser(bytes.NewReader(b))
		if err == nil && len(b) <= maxMirrorBody {
			body, bodyOK = b, true
		}
	}
	for _, m := range h.mirrors {
		if m.Percent < 100 && rand.Float64()*100 >= m.Percent {
			continue
		}
		c := g.clusters[m.Backend]
		if c == nil {
			continue
		}
		mreq := out.Clone(context.WithoutCancel(out.Context()))
		mreq.Body = http.NoBody
		mreq.ContentLength = 0
		if bodyOK && body != nil {
			mreq.Body = io.NopCloser(bytes.NewReader(body))
			mreq.ContentLength = int64(len(body))
		}
		port := m.Port
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			addr, err := c.Pick(nil)
			if err != nil {
				return
			}
			mreq = mreq.WithContext(ctx)
			mreq.URL.Scheme, mreq.URL.Host = "http", net.JoinHostPort(addr.IP.String(), strconv.Itoa(int(port)))
			if p := c.Spec().Protocol; p == "tls" || p == "h2" {
				mreq.URL.Scheme = "https"
			}
			mreq.RequestURI = ""
			resp, err := c.Transport().RoundTrip(mreq)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
}
