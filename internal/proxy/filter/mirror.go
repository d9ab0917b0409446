package filter

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// maxMirrorBody bounds how much of a request body is buffered to mirror it.
const maxMirrorBody = 1 << 20

// mirrorTimeout bounds one mirrored exchange.
const mirrorTimeout = 30 * time.Second

// mirror is Gateway API's RequestMirror: it sends a copy of the request as it stands at this
// point of the chain, fire-and-forget, to another backend, for the configured share of
// requests. Bodies up to 1 MiB are buffered for the copy; larger ones are mirrored without
// body. The mirror's answer is discarded and never delays the request.
type mirror struct{ m *ir.Mirror }

func newMirror(f *ir.Filter, _ *ir.Route, _ *Env) (Stage, error) {
	if f.Mirror == nil {
		return nil, errors.New("mirror is not set")
	}
	return &mirror{f.Mirror}, nil
}

func (s *mirror) Serve(x *Exchange) bool {
	m := s.m
	if m.Percent < 100 && rand.Float64()*100 >= m.Percent {
		return false
	}
	if x.Upstreams == nil {
		return false
	}
	c := x.Upstreams.Cluster(m.Backend)
	if c == nil {
		return false
	}
	out := x.Req
	var body []byte
	if out.Body != nil && out.Body != http.NoBody && out.ContentLength >= 0 && out.ContentLength <= maxMirrorBody {
		b, err := io.ReadAll(io.LimitReader(out.Body, maxMirrorBody+1))
		out.Body.Close()
		out.Body = io.NopCloser(bytes.NewReader(b))
		if err == nil && len(b) <= maxMirrorBody {
			body = b
		}
	}
	mreq := out.Clone(context.WithoutCancel(out.Context()))
	mreq.Body, mreq.ContentLength, mreq.GetBody = http.NoBody, 0, nil
	if body != nil {
		mreq.Body, mreq.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}
	mreq.RequestURI = ""
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), mirrorTimeout)
		defer cancel()
		addr, err := c.Pick(nil)
		if err != nil {
			return
		}
		mreq = mreq.WithContext(ctx)
		// Not addr.HostPort: that caches one port per address, and the main path asks for its own.
		mreq.URL.Scheme, mreq.URL.Host = c.Scheme(), net.JoinHostPort(addr.IP.String(), strconv.Itoa(int(m.Port)))
		resp, err := c.Transport().RoundTrip(mreq)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	return false
}
