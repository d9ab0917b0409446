package h2

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// fuzzConn is a connection whose peer sent in (then its side went quiet and closed) and
// which records what the server wrote.
type fuzzConn struct {
	r      *bytes.Reader
	mu     sync.Mutex
	out    bytes.Buffer
	closed chan struct{}
	once   sync.Once
}

func newFuzzConn(in []byte) *fuzzConn {
	return &fuzzConn{r: bytes.NewReader(in), closed: make(chan struct{})}
}

func (c *fuzzConn) Read(p []byte) (int, error) {
	if c.r.Len() > 0 {
		return c.r.Read(p)
	}
	// Let the server answer what it read before the peer goes away.
	select {
	case <-c.closed:
	case <-time.After(20 * time.Millisecond):
	}
	return 0, io.EOF
}

// Write records p, even after Close: x/net's server writes from goroutines of its own, which
// may run after it closed the connection, and what they wrote is part of its answer.
func (c *fuzzConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}

func (c *fuzzConn) Close() error                     { c.once.Do(func() { close(c.closed) }); return nil }
func (c *fuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (c *fuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234} }
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// goAwayCode is the error code of the first GOAWAY the server wrote (-1: none).
func (c *fuzzConn) goAwayCode() int64 {
	c.mu.Lock()
	out := append([]byte(nil), c.out.Bytes()...)
	c.mu.Unlock()
	fr := http2.NewFramer(io.Discard, bytes.NewReader(out))
	fr.SetMaxReadFrameSize(1 << 24)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return -1
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			return int64(g.ErrCode)
		}
	}
}

var fuzzHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	_, _ = io.WriteString(w, "ok")
})

// seedFrames builds a client's frames with the Framer (the seeds of FuzzFrameLoop).
func seedFrames(build func(fr *http2.Framer, enc *hpack.Encoder, hbuf *bytes.Buffer)) []byte {
	var out, hbuf bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	enc := hpack.NewEncoder(&hbuf)
	_ = fr.WriteSettings()
	build(fr, enc, &hbuf)
	return out.Bytes()
}

func requestBlock(enc *hpack.Encoder, hbuf *bytes.Buffer, extra ...string) []byte {
	hbuf.Reset()
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/x"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for i := 0; i+1 < len(extra); i += 2 {
		_ = enc.WriteField(hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	return append([]byte(nil), hbuf.Bytes()...)
}

// FuzzFrameLoop feeds arbitrary client bytes (after the preface) to our server and to x/net's,
// configured alike. Ours may not panic or hang, and what x/net's refuses as a connection error
// (a GOAWAY with an error code) ours refuses too.
func FuzzFrameLoop(f *testing.F) {
	f.Add(seedFrames(func(fr *http2.Framer, enc *hpack.Encoder, hbuf *bytes.Buffer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: requestBlock(enc, hbuf, "content-length", "2"), EndHeaders: true})
		_ = fr.WriteData(1, true, []byte("hi"))
	}))
	f.Add(seedFrames(func(fr *http2.Framer, enc *hpack.Encoder, hbuf *bytes.Buffer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: requestBlock(enc, hbuf), EndHeaders: false})
		_ = fr.WriteContinuation(1, true, nil)
		_ = fr.WriteWindowUpdate(0, 1<<30)
		_ = fr.WritePing(false, [8]byte{1})
		_ = fr.WriteRSTStream(1, http2.ErrCodeCancel)
	}))
	f.Add(seedFrames(func(fr *http2.Framer, enc *hpack.Encoder, hbuf *bytes.Buffer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 2, BlockFragment: requestBlock(enc, hbuf), EndStream: true, EndHeaders: true})
	}))
	f.Add(seedFrames(func(fr *http2.Framer, enc *hpack.Encoder, hbuf *bytes.Buffer) {
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31})
	}))
	f.Add(seedFrames(func(fr *http2.Framer, enc *hpack.Encoder, hbuf *bytes.Buffer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: requestBlock(enc, hbuf), EndStream: true, EndHeaders: true})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: requestBlock(enc, hbuf), EndStream: true, EndHeaders: true})
		_ = fr.WriteData(5, true, []byte("x"))
	}))
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0}) // SETTINGS, empty
	f.Fuzz(func(t *testing.T, in []byte) {
		input := append([]byte(http2.ClientPreface), in...)
		ours := newFuzzConn(input)
		s := &Server{Handler: fuzzHandler, Limits: Limits{MaxConcurrentStreams: 250, InitialWindowSize: 1 << 20, ConnWindowSize: 1 << 20, MaxReadFrameSize: 16 << 10, MaxHeaderListSize: 64 << 10, IdleTimeout: -1}}
		done := make(chan struct{})
		go func() { _ = s.ServeConn(ours); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatal("our server did not end the connection within 2 s of EOF")
		}

		theirs := newFuzzConn(input)
		xs := &http2.Server{MaxConcurrentStreams: 250, MaxReadFrameSize: 16 << 10, MaxUploadBufferPerStream: 1 << 20,
			MaxUploadBufferPerConnection: 1 << 20}
		xdone := make(chan struct{})
		go func() {
			xs.ServeConn(theirs, &http2.ServeConnOpts{Handler: fuzzHandler, BaseConfig: &http.Server{MaxHeaderBytes: 64 << 10}})
			close(xdone)
		}()
		// x/net's server waits a second after a GOAWAY before it closes: what it wrote by
		// the time the peer went quiet (EOF) is its verdict.
		// Its frames are written by goroutines of their own, so they may land after
		// ServeConn returned.
		deadline := time.Now().Add(2 * time.Second)
		for theirs.goAwayCode() < 0 && time.Now().Before(deadline) {
			select {
			case <-xdone:
				xdone = nil // from now on, only its last writes are waited for
				deadline = time.Now().Add(50 * time.Millisecond)
			case <-time.After(2 * time.Millisecond):
			}
		}
		theirs.Close()
		// What x/net's server refuses as a connection error, ours refuses too. (The other
		// way is not checked: x/net's GOAWAY is written by a goroutine of its own and is
		// lost when the peer's EOF ends its loop first.)
		if o, x := ours.goAwayCode(), theirs.goAwayCode(); x > 0 && o <= 0 && !repeatsASetting(in) {
			t.Errorf("x/net's server refused this connection (GOAWAY %v), ours did not (GOAWAY %v)", code(x), code(o))
		}
	})
}

// repeatsASetting says whether the client's frames hold a SETTINGS frame that repeats a
// setting: x/net's server refuses it (PROTOCOL_ERROR), RFC 9113 lets the last value win, and
// h2spec 6.5.3/1 checks that ours does.
func repeatsASetting(in []byte) bool {
	fr := http2.NewFramer(io.Discard, bytes.NewReader(in))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return false
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() && sf.HasDuplicates() {
			return true
		}
	}
}

func code(c int64) string {
	if c < 0 {
		return "none"
	}
	return http2.ErrCode(c).String()
}
