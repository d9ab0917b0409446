package h2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"apoxy.dev/apoxy/internal/h2spectest"
)

// rawClient speaks HTTP/2 frame by frame, as a hostile peer would.
type rawClient struct {
	t      *testing.T
	nc     net.Conn
	fr     *http2.Framer
	frames chan http2.Frame
	closed chan struct{}
	enc    *hpack.Encoder
	hbuf   bytes.Buffer
}

func dialRaw(t *testing.T, addr string, read bool) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawClient{t: t, nc: nc, fr: http2.NewFramer(nc, nc), frames: make(chan http2.Frame, 1024), closed: make(chan struct{})}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.enc = hpack.NewEncoder(&c.hbuf)
	if _, err := io.WriteString(nc, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	if read {
		go func() {
			defer close(c.closed)
			for {
				f, err := c.fr.ReadFrame()
				if err != nil {
					return
				}
				switch f := f.(type) {
				case *http2.GoAwayFrame:
					g := *f
					c.frames <- &g
				case *http2.RSTStreamFrame:
					r := *f
					c.frames <- &r
				case *http2.MetaHeadersFrame:
					c.frames <- f
				}
			}
		}()
	}
	return c
}

// headers encodes a request header block.
func (c *rawClient) headers(path string, extra ...string) []byte {
	c.hbuf.Reset()
	pseudo := [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", path}}
	var fields [][2]string
	for i := 0; i+1 < len(extra); i += 2 {
		if j := slices.IndexFunc(pseudo, func(f [2]string) bool { return f[0] == extra[i] }); j >= 0 {
			pseudo[j][1] = extra[i+1] // a pseudo-header in extra replaces the default
			continue
		}
		fields = append(fields, [2]string{extra[i], extra[i+1]})
	}
	for _, f := range append(pseudo, fields...) {
		_ = c.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return append([]byte(nil), c.hbuf.Bytes()...)
}

func (c *rawClient) request(id uint32, end bool, extra ...string) {
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.headers("/", extra...), EndStream: end, EndHeaders: true}); err != nil {
		c.t.Fatalf("write HEADERS: %v", err)
	}
}

// waitGoAway waits for GOAWAY with code, or fails.
func (c *rawClient) waitGoAway(code http2.ErrCode, within time.Duration) {
	c.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case f := <-c.frames:
			if g, ok := f.(*http2.GoAwayFrame); ok {
				if g.ErrCode != code {
					c.t.Fatalf("GOAWAY %v, want %v", g.ErrCode, code)
				}
				return
			}
		case <-c.closed:
			// Frames read before the close may still be queued.
			for {
				select {
				case f := <-c.frames:
					if g, ok := f.(*http2.GoAwayFrame); ok {
						if g.ErrCode != code {
							c.t.Fatalf("GOAWAY %v, want %v", g.ErrCode, code)
						}
						return
					}
					continue
				default:
				}
				break
			}
			c.t.Fatalf("connection closed without GOAWAY %v", code)
		case <-deadline:
			c.t.Fatalf("no GOAWAY %v within %v", code, within)
		}
	}
}

// TestRapidReset (CVE-2023-44487): a peer that opens streams and resets them at once, while
// their handlers still run, fills the handler queue and is told ENHANCE_YOUR_CALM; the
// handlers started stay within MaxConcurrentStreams.
func TestRapidReset(t *testing.T) {
	var started atomic.Int32
	release := make(chan struct{})
	defer close(release)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		<-release // a handler that does not notice the reset (an upstream call, say)
	}), Limits: Limits{MaxConcurrentStreams: 4, MaxQueuedStreams: 2}}
	c := dialRaw(t, serve(t, s), true)
	for id := uint32(1); id < 200; id += 2 {
		c.request(id, true)
		if err := c.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			break // the server closed the connection
		}
	}
	c.waitGoAway(http2.ErrCodeEnhanceYourCalm, 5*time.Second)
	if n := started.Load(); n > 4 {
		t.Errorf("%d handlers started, want at most MaxConcurrentStreams (4)", n)
	}
}

// TestContinuationFlood (CVE-2024-27316 class): endless CONTINUATION frames past the header
// list limit end the connection; the server does not keep reading them.
func TestContinuationFlood(t *testing.T) {
	var called atomic.Bool
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called.Store(true) }), Limits: Limits{MaxHeaderListSize: 16 << 10}}
	c := dialRaw(t, serve(t, s), true)
	blk := c.headers("/")
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk, EndHeaders: false}); err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte{0x40, 0x01, 'x', 0x7f, 0x7f}, 3000) // literal fields, never ending
	var sent int
	var err error
	for sent = 0; sent < 64<<20; sent += len(junk) {
		if err = c.fr.WriteContinuation(1, false, junk); err != nil {
			break
		}
	}
	if err == nil {
		t.Fatalf("the server read %d MiB of CONTINUATION without closing", sent>>20)
	}
	if called.Load() {
		t.Error("the handler ran for a header block past the limit")
	}
	t.Logf("connection closed after %d KiB of CONTINUATION", sent>>10)
}

// TestSlowReader: a peer that never reads loses its connection at the write timeout instead of
// pinning it and the handler writing to it. Control frames (PING and SETTINGS acknowledgements,
// RST_STREAM) go through the same fixed 16 KiB buffer under the same deadline, so a flood of
// them cannot queue memory the way x/net's server has to bound (maxQueuedControlFrames).
// (A PING flood that never reads stalls in loopback TCP itself, the client's writes blocking
// while the server waits to read, so the handler's writes are what this test drives.)
func TestSlowReader(t *testing.T) {
	failed := make(chan time.Duration, 1)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for {
			start := time.Now()
			if _, err := w.Write(chunk); err != nil {
				failed <- time.Since(start)
				return
			}
		}
	}), Limits: Limits{WriteTimeout: 300 * time.Millisecond}}
	c := dialRaw(t, serve(t, s), false)
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10)
	}
	// Flow control lets the server send all it wants: only the socket holds it back.
	if err := c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteWindowUpdate(0, 1<<31-1-65535); err != nil {
		t.Fatal(err)
	}
	c.request(1, true)
	select {
	case d := <-failed:
		// The write that failed waited about WriteTimeout, not for ever.
		if d > 5*time.Second {
			t.Fatalf("the blocked write failed after %v, want about the 300 ms write timeout", d)
		}
		t.Logf("the handler's write failed after %v", d.Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		t.Fatal("the response to a peer that never reads is still being written after 20 s")
	}
	waitFor(t, "the connection of a peer that never reads is still open", func() bool { return s.nconns.Load() == 0 })
}

// TestHPACKBomb: a small header block that decodes to more than MaxHeaderListSize (one large
// dynamic-table entry referenced over and over) is answered 431 without the handler.
func TestHPACKBomb(t *testing.T) {
	var called atomic.Bool
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called.Store(true) }), Limits: Limits{MaxHeaderListSize: 32 << 10}}
	c := dialRaw(t, serve(t, s), true)
	c.hbuf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/"}} {
		_ = c.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	_ = c.enc.WriteField(hpack.HeaderField{Name: "x-bomb", Value: strings.Repeat("b", 3000)}) // enters the dynamic table
	blk := append([]byte(nil), c.hbuf.Bytes()...)
	for range 200 {
		blk = append(blk, 0x80|62) // indexed: the newest dynamic entry (x-bomb), 3 KB each time
	}
	if len(blk) > 16<<10 {
		t.Fatalf("block %d bytes", len(blk))
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk, EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-c.frames:
		h, ok := f.(*http2.MetaHeadersFrame)
		if !ok || h.PseudoValue("status") != "431" {
			t.Fatalf("answer %v, want 431", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no answer")
	}
	if called.Load() {
		t.Error("the handler ran")
	}
}

// TestMaxConcurrentStreams: a stream past the advertised limit is refused (REFUSED_STREAM, so
// the client may retry it), the others are served.
func TestMaxConcurrentStreams(t *testing.T) {
	release := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }), Limits: Limits{MaxConcurrentStreams: 2}}
	c := dialRaw(t, serve(t, s), true)
	for _, id := range []uint32{1, 3, 5} {
		c.request(id, true)
	}
	select {
	case f := <-c.frames:
		r, ok := f.(*http2.RSTStreamFrame)
		if !ok || r.StreamID != 5 || r.ErrCode != http2.ErrCodeRefusedStream {
			t.Fatalf("got %v, want RST_STREAM 5 REFUSED_STREAM", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the third stream was not refused")
	}
	close(release)
	for n := 0; n < 2; {
		select {
		case f := <-c.frames:
			if _, ok := f.(*http2.MetaHeadersFrame); ok {
				n++
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the two streams were not answered")
		}
	}
}

// TestStreamErrorBudget ("MadeYouReset", 2025): a peer that keeps provoking stream errors
// (malformed requests) is told ENHANCE_YOUR_CALM.
func TestStreamErrorBudget(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), Limits: Limits{MaxStreamErrors: 10}}
	c := dialRaw(t, serve(t, s), true)
	for id := uint32(1); id < 100; id += 2 {
		c.request(id, true, "connection", "keep-alive") // malformed in HTTP/2
	}
	c.waitGoAway(http2.ErrCodeEnhanceYourCalm, 5*time.Second)
}

// TestFramesOnIdleStreams: DATA, WINDOW_UPDATE or RST_STREAM on a stream that was never opened
// is a connection error (RFC 9113 §5.1), even stream IDs below the client's last one included
// (those are the server's, and it opens none). FuzzFrameLoop found the even case, against
// x/net's server.
func TestFramesOnIdleStreams(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	addr := serve(t, s)
	for name, send := range map[string]func(fr *http2.Framer, id uint32) error{
		"DATA":          func(fr *http2.Framer, id uint32) error { return fr.WriteData(id, true, []byte("x")) },
		"WINDOW_UPDATE": func(fr *http2.Framer, id uint32) error { return fr.WriteWindowUpdate(id, 1) },
		"RST_STREAM":    func(fr *http2.Framer, id uint32) error { return fr.WriteRSTStream(id, http2.ErrCodeCancel) },
	} {
		for _, id := range []uint32{4, 9} {
			t.Run(fmt.Sprintf("%s on %d", name, id), func(t *testing.T) {
				c := dialRaw(t, addr, true)
				c.request(7, true) // the client's last stream: 9 is above it, 4 below
				if err := send(c.fr, id); err != nil {
					t.Fatal(err)
				}
				c.waitGoAway(http2.ErrCodeProtocol, 5*time.Second)
			})
		}
	}
}

// TestSettingsFlood: a SETTINGS frame that carries more than 100 settings is a connection
// error, as x/net's server has it; one that repeats a setting is not (RFC 9113: the last value
// wins; x/net refuses it, h2spec 6.5.3/1 does not).
func TestSettingsFlood(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	addr := serve(t, s)
	many := make([]http2.Setting, 101)
	for i := range many {
		many[i] = http2.Setting{ID: http2.SettingID(0x100 + i), Val: 1}
	}
	c := dialRaw(t, addr, true)
	if err := c.fr.WriteSettings(many...); err != nil {
		t.Fatal(err)
	}
	c.waitGoAway(http2.ErrCodeProtocol, 5*time.Second)

	c = dialRaw(t, addr, true)
	if err := c.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 15}, http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 16}); err != nil {
		t.Fatal(err)
	}
	c.request(1, true)
	select {
	case f := <-c.frames:
		if _, ok := f.(*http2.MetaHeadersFrame); !ok {
			t.Fatalf("after a SETTINGS frame with a repeated setting: %v, want the response", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no response after a SETTINGS frame with a repeated setting")
	}
}

// TestIdleTimeout: a connection without streams is sent GOAWAY and closed.
func TestIdleTimeout(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), Limits: Limits{IdleTimeout: 200 * time.Millisecond}}
	c := dialRaw(t, serve(t, s), true)
	c.request(1, true)
	c.waitGoAway(http2.ErrCodeNo, 5*time.Second)
	select {
	case <-c.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the idle connection stayed open after GOAWAY")
	}
}

// TestShutdownDrains: Shutdown sends GOAWAY, lets the running request finish, refuses new
// streams and returns once the connection is gone.
func TestShutdownDrains(t *testing.T) {
	release := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "finished")
	})}
	addr := serve(t, s)
	client := h2cClient()
	got := make(chan string, 1)
	go func() {
		resp, err := client.Get("http://" + addr + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	time.Sleep(200 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a request ran", err)
	default:
	}
	close(release)
	if b := <-got; b != "finished" {
		t.Errorf("the running request got %q", b)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last request")
	}
	if err := s.ServeConn(nopConn{}); !errors.Is(err, ErrServerClosed) {
		t.Errorf("ServeConn after Shutdown: %v", err)
	}
}

type nopConn struct{ net.Conn }

func (nopConn) Close() error { return nil }

// TestBodyReadTimeout: a client that opens a request body and stops sending it makes the
// handler's read fail with ErrBodyReadTimeout after BodyReadTimeout; the handler's answer
// reaches the client and the rest of the request is refused (RST_STREAM). A client that keeps
// sending, slower than the timeout in total but not between frames, is not cut.
func TestBodyReadTimeout(t *testing.T) {
	readErr := make(chan error, 2)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		readErr <- err
		if errors.Is(err, ErrBodyReadTimeout) {
			w.WriteHeader(http.StatusRequestTimeout)
			return
		}
		w.WriteHeader(http.StatusOK)
	}), Limits: Limits{BodyReadTimeout: 300 * time.Millisecond}}
	c := dialRaw(t, serve(t, s), true)

	// Slow but steady: a DATA frame every 150 ms for 900 ms in all.
	c.request(1, false, ":method", "POST")
	for i := 0; i < 6; i++ {
		time.Sleep(150 * time.Millisecond)
		if err := c.fr.WriteData(1, i == 5, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-readErr; err != nil {
		t.Fatalf("steady body: read error %v, want none", err)
	}

	// Stalled: one frame, then nothing.
	start := time.Now()
	c.request(3, false, ":method", "POST")
	if err := c.fr.WriteData(3, false, []byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, ErrBodyReadTimeout) {
			t.Fatalf("stalled body: read error %v, want ErrBodyReadTimeout", err)
		}
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Fatalf("timed out after %v, before BodyReadTimeout (300ms)", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a stalled body read was not cut")
	}
	var status string
	var reset bool
	for deadline := time.After(5 * time.Second); status == "" || !reset; {
		select {
		case f := <-c.frames:
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				if f.StreamID == 3 {
					status = f.PseudoValue("status")
				}
			case *http2.RSTStreamFrame:
				reset = reset || f.StreamID == 3
			}
		case <-deadline:
			t.Fatalf("stream 3: status %q, reset %v; want 408 and RST_STREAM", status, reset)
		}
	}
	if status != "408" {
		t.Fatalf("stream 3 answered %s, want 408", status)
	}
}

// TestSetLimits: limits changed on a running server reach connections opened afterwards (in
// their SETTINGS), while an open connection keeps the ones it was told.
func TestSetLimits(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), Limits: Limits{MaxConcurrentStreams: 7}}
	addr := serve(t, s)
	if got := h2spectest.Settings(t, addr)[http2.SettingMaxConcurrentStreams]; got != 7 {
		t.Fatalf("MAX_CONCURRENT_STREAMS %d, want 7", got)
	}
	s.SetLimits(Limits{MaxConcurrentStreams: 3, InitialWindowSize: 1 << 16, MaxHeaderListSize: 8 << 10})
	got := h2spectest.Settings(t, addr)
	if got[http2.SettingMaxConcurrentStreams] != 3 || got[http2.SettingInitialWindowSize] != 1<<16 || got[http2.SettingMaxHeaderListSize] != 8<<10 {
		t.Fatalf("after SetLimits: SETTINGS %v, want streams 3, window 65536, header list 8192", got)
	}
}
