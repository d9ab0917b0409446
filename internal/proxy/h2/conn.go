package h2

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"apoxy.dev/apoxy/internal/netpeek"
)

const (
	maxWindow = 1<<31 - 1
	// bufSize is the connection's read and write buffer size.
	bufSize = 16 << 10
)

var (
	errClientPreface = errors.New("h2: bad client preface")
	errStreamClosed  = errors.New("h2: stream closed")
	errConnClosed    = errors.New("h2: connection closed")
)

// conn is one HTTP/2 connection.
type conn struct {
	s   *Server
	lim *Limits // taken when the connection opened
	nc  net.Conn
	tls *tls.ConnectionState
	br  *bufio.Reader
	bw  *bufio.Writer
	fr  *http2.Framer
	// base is the parent of every request's context. A request's context is cancelled with
	// its stream (which the connection's end resets): deriving it from a per-connection
	// context instead would leave that context's map of children allocated on every idle
	// connection.
	base   context.Context
	remote string

	// mu guards everything below, and every write (the Framer, bw, the encoder).
	mu   sync.Mutex
	cond sync.Cond // broadcast when send windows grow, streams end, or the conn closes
	// writers counts stream goroutines waiting to write: the last one flushes for all.
	writers atomic.Int32
	enc     *hpack.Encoder
	hbuf    bytes.Buffer
	closed  bool // the socket failed or the connection is over: writes fail

	sendWin   int32  // connection send window
	recvWin   int32  // connection receive window left (what the peer may still send)
	recvAck   int32  // consumed bytes not yet given back (connection WINDOW_UPDATE)
	peerWin   int32  // peer's SETTINGS_INITIAL_WINDOW_SIZE
	peerMax   uint32 // peer's SETTINGS_MAX_FRAME_SIZE
	streams   map[uint32]*stream
	lastID    uint32 // highest stream id the peer opened
	running   int    // handlers running
	queue     []*stream
	goingAway bool // GOAWAY sent: no new stream is taken
	goAwayID  uint32
	// wake: windows grew during this read burst; stream writers waiting for window are woken
	// once the burst is handled (so a burst's WINDOW_UPDATEs are judged together).
	wake      bool
	errCount  int       // stream errors caused by the peer in the current second
	errSecond time.Time // that second
	idleTimer *time.Timer
	// dec decodes request header blocks (through hb); it outlives the Framer, which a
	// parked connection lets go of.
	dec *hpack.Decoder
	hb  *headerBlock
	// parked is set while the idle connection rests in netpeek's Parker: no goroutine, no
	// buffers, no Framer.
	parked netpeek.Parked
	// restWake: the connection has been idle for IdleRest and its reader, waiting for the
	// next frame (peeking), was woken (a read deadline now) to rest; the timeout it reads is
	// not an error.
	restWake, peeking bool
	// idleAt is when the connection last went idle (no stream, no handler); idleTimer fires
	// at IdleRest after it (wakeToRest) and at IdleTimeout (goAway).
	idleAt time.Time
	// peerTable is the peer's SETTINGS_HEADER_TABLE_SIZE; encReset says the encoder was
	// dropped during a rest (see acquireLocked).
	peerTable uint32
	encReset  bool
	// ended: the reader is gone for good (end); the buffers go when no handler is left.
	ended bool
}

func newConn(s *Server, nc net.Conn) *conn {
	lim := s.limits()
	c := &conn{s: s, nc: nc, streams: map[uint32]*stream{}, sendWin: 65535, recvWin: lim.ConnWindowSize, lim: lim,
		peerWin: 65535, peerMax: 16384, peerTable: 4096, remote: nc.RemoteAddr().String()}
	c.cond.L = &c.mu
	parent := context.Background()
	if s.BaseContext != nil {
		parent = s.BaseContext(nc)
	}
	c.base = parent
	return c
}

// end lets go of the connection: its streams fail, its buffers go back to their pools.
func (c *conn) end() {
	c.mu.Lock()
	c.closed, c.ended = true, true
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	for _, st := range c.streams {
		st.abort(errConnClosed)
	}
	c.cond.Broadcast()
	if c.running == 0 {
		c.releaseLocked() // else the last handler does (see handlerDone)
	}
	c.mu.Unlock()
	c.nc.Close()
	c.s.forget(c)
}

var readers, writers sync.Pool

// acquireLocked gives the connection its buffers and Framer (again, after a rest).
func (c *conn) acquireLocked() {
	if c.br != nil {
		// already reading
	} else if br, ok := readers.Get().(*bufio.Reader); ok {
		br.Reset(c.nc)
		c.br = br
	} else {
		c.br = bufio.NewReaderSize(c.nc, bufSize)
	}
	if c.bw != nil {
		// already writing
	} else if bw, ok := writers.Get().(*bufio.Writer); ok {
		bw.Reset(c.nc)
		c.bw = bw
	} else {
		c.bw = bufio.NewWriterSize(c.nc, bufSize)
	}
	if c.streams == nil {
		c.streams = map[uint32]*stream{}
	}
	if c.dec == nil {
		return // before the preface: the Framer comes after it
	}
	if c.hb == nil {
		c.hb = newHeaderBlock(c.dec)
	}
	c.fr = http2.NewFramer(c.bw, c.br)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(c.lim.MaxReadFrameSize)
	c.fr.MaxHeaderListSize = c.lim.MaxHeaderListSize
	if c.enc == nil {
		c.enc = hpack.NewEncoder(&c.hbuf)
		c.enc.SetMaxDynamicTableSizeLimit(c.peerTable)
		if c.encReset {
			// A new encoder after a rest: the peer's decoder still holds the old one's
			// entries, so the next header block starts with table size updates to 0 (which
			// empties it) and back.
			c.encReset = false
			c.enc.SetMaxDynamicTableSize(0)
			c.enc.SetMaxDynamicTableSize(c.peerTable)
		}
	}
}

// releaseLocked gives the buffers back to their pools and drops the Framer (whose read and
// write buffers grow to the largest frame seen); the write buffer must be flushed.
func (c *conn) releaseLocked() {
	if c.br != nil {
		c.br.Reset(nil)
		readers.Put(c.br)
		c.br = nil
	}
	if c.bw != nil {
		c.bw.Reset(nil)
		writers.Put(c.bw)
		c.bw = nil
	}
	c.fr = nil
}

func (c *conn) serve() error {
	c.mu.Lock()
	c.acquireLocked()
	c.mu.Unlock()
	_ = c.nc.SetReadDeadline(time.Now().Add(c.lim.HandshakeTimeout))
	var pre [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.br, pre[:]); err != nil || string(pre[:]) != http2.ClientPreface {
		c.end()
		return errClientPreface
	}
	c.mu.Lock()
	c.dec = hpack.NewDecoder(4096, nil)
	c.dec.SetMaxStringLength(int(c.lim.MaxHeaderListSize))
	c.acquireLocked()
	c.mu.Unlock()
	settings := []http2.Setting{
		{ID: http2.SettingMaxConcurrentStreams, Val: c.lim.MaxConcurrentStreams},
		{ID: http2.SettingInitialWindowSize, Val: uint32(c.lim.InitialWindowSize)},
		{ID: http2.SettingMaxHeaderListSize, Val: c.lim.MaxHeaderListSize},
	}
	if c.lim.MaxReadFrameSize != 16384 {
		settings = append(settings, http2.Setting{ID: http2.SettingMaxFrameSize, Val: c.lim.MaxReadFrameSize})
	}
	c.mu.Lock()
	err := c.fr.WriteSettings(settings...)
	if err == nil && c.recvWin > 65535 {
		err = c.fr.WriteWindowUpdate(0, uint32(c.recvWin-65535))
	}
	if err == nil {
		err = c.flushLocked()
	}
	c.mu.Unlock()
	if err != nil {
		c.end()
		return err
	}
	// The first frame must be SETTINGS (RFC 9113 §3.4), within the handshake timeout.
	f, err := c.fr.ReadFrame()
	var se http2.StreamError
	if errors.As(err, &se) {
		err = http2.ConnectionError(http2.ErrCodeProtocol) // not SETTINGS, then
	}
	if err == nil {
		if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
			err = http2.ConnectionError(http2.ErrCodeProtocol)
		}
	}
	if err != nil {
		err = c.fail(err)
		c.end()
		return err
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	c.mu.Lock()
	err = c.handle(f)
	c.resetIdleLocked()
	c.mu.Unlock()
	return c.loop(err)
}

// loop reads and handles frames until the connection ends, or rests in netpeek's Parker
// between requests (c.Resume takes it up again).
func (c *conn) loop(err error) error {
	parked := false
	defer func() {
		if !parked {
			c.end()
		}
	}()
	var f http2.Frame
	var se http2.StreamError
	for err == nil {
		if c.br.Buffered() == 0 {
			// At a frame boundary with nothing buffered: wait for the next byte without
			// taking it. A connection idle for IdleRest is woken here (a read deadline, see
			// wakeToRest) to rest without a goroutine.
			c.mu.Lock()
			c.peeking = true
			c.mu.Unlock()
			_, perr := c.br.Peek(1)
			c.mu.Lock()
			c.peeking = false
			woken, live := c.restWake, !c.goingAway && !c.closed
			c.restWake = false
			if woken && live {
				_ = c.nc.SetReadDeadline(time.Time{})
				if perr != nil && isTimeout(perr) {
					parked = c.restful() && c.parkLocked()
				}
				if !parked && len(c.streams) == 0 && c.running == 0 && c.idleTimer != nil {
					// Not rested (a frame came in as it was woken, or a write was still
					// buffered): try again after IdleRest, not at the idle timeout.
					c.idleTimer.Reset(c.lim.IdleRest)
				}
				if perr != nil && isTimeout(perr) {
					c.mu.Unlock()
					if parked {
						return nil
					}
					continue
				}
			}
			c.mu.Unlock()
			if perr != nil {
				err = perr
				continue
			}
		}
		f, err = c.fr.ReadFrame()
		if hf, ok := f.(*http2.HeadersFrame); ok && err == nil {
			f, err = c.hb.read(c.fr, hf, c.lim.MaxHeaderListSize)
		}
		c.mu.Lock()
		switch {
		case err == nil:
			err = c.handle(f)
		case errors.As(err, &se):
			// A frame the Framer refused for one stream (a bad header field, a zero
			// WINDOW_UPDATE): that stream is reset, the connection goes on.
			err = c.resetStream(se.StreamID, se.Code, true)
		default:
			c.mu.Unlock()
			return c.fail(err)
		}
		if err == nil && c.br.Buffered() == 0 {
			// The end of a read burst: whatever was answered goes out in one write, and
			// writers that waited for window go on.
			err = c.flushLocked()
			if c.wake {
				c.wake = false
				c.cond.Broadcast()
			}
		}
		done := c.goingAway && len(c.streams) == 0 && c.running == 0
		c.mu.Unlock()
		if done {
			return nil
		}
	}
	return c.fail(err)
}

// restful says whether the connection may rest without a goroutine: nothing is running or
// buffered (in our reader, or replayed by the HTTP/1.1 server's hand-over). Under TLS, the
// read past the wake's deadline that timed out proves the TLS layer holds no decrypted bytes
// either (it returns those before it reads the socket; a timeout is not sticky in crypto/tls).
func (c *conn) restful() bool {
	if len(c.streams) > 0 || c.running > 0 || c.goingAway || c.closed || c.br.Buffered() > 0 || c.bw.Buffered() > 0 {
		return false
	}
	b, ok := c.nc.(interface{ Buffered() int })
	return !ok || b.Buffered() == 0
}

// onIdle runs on the idle timer: at IdleTimeout after the connection went idle it is sent
// GOAWAY; before that, at IdleRest, a reader waiting for the next frame is woken to rest (see
// loop), and one busy with a frame is tried again later.
func (c *conn) onIdle() {
	c.mu.Lock()
	if c.closed || c.goingAway || len(c.streams) > 0 || c.running > 0 {
		c.mu.Unlock()
		return
	}
	idle := time.Since(c.idleAt)
	timeout := c.lim.IdleTimeout
	if timeout >= 0 && idle >= timeout {
		c.mu.Unlock()
		c.goAway()
		return
	}
	next := timeout - idle
	if timeout < 0 {
		next = -1
	}
	if !c.parked.Valid() && !c.restWake && c.canRest() {
		if c.peeking {
			c.restWake = true
			_ = c.nc.SetReadDeadline(time.Now())
		} else if r := c.lim.IdleRest; next < 0 || r < next {
			next = r // busy with a frame: again later
		}
	}
	if next >= 0 {
		c.idleTimer.Reset(next)
	}
	c.mu.Unlock()
}

// canRest: connections that may rest at all (IdleRest not negative).
func (c *conn) canRest() bool { return c.lim.IdleRest >= 0 }

// parkLocked lets go of the reader goroutine, the buffers and the Framer while the connection
// is idle; false if it cannot be parked (it goes on reading).
func (c *conn) parkLocked() bool {
	c.releaseLocked()
	c.streams, c.queue = nil, nil
	// The encoder's dynamic table (and its maps) go too; see acquireLocked.
	c.enc, c.encReset = nil, true
	c.hbuf = bytes.Buffer{}
	c.hb.release()
	c.hb = nil
	c.parked = netpeek.DefaultParker.Park(c.nc, c)
	if !c.parked.Valid() {
		c.acquireLocked()
		return false
	}
	return true
}

// Resume (netpeek.Resumer) takes a parked connection up again: bytes arrived, or (err) it was unparked to be
// sent GOAWAY (the idle timeout, Shutdown) or closed.
func (c *conn) Resume(err error) {
	c.mu.Lock()
	c.parked = netpeek.Parked{}
	c.acquireLocked()
	if err == nil && len(c.streams) == 0 && c.running == 0 && c.idleTimer != nil {
		// Woken by a frame that may open no stream (a PING, a WINDOW_UPDATE, a SETTINGS
		// ACK): without this the idle timer, last set for the idle timeout, would keep the
		// connection awake until then. The idle time still counts from idleAt.
		c.idleTimer.Reset(c.lim.IdleRest)
	}
	c.mu.Unlock()
	if err != nil {
		c.goAway()
	}
	_ = c.loop(nil)
}

// unparkLocked wakes a parked connection to be written to or closed; its goroutine comes back
// (with ErrCancelled: it sends GOAWAY, see resume).
func (c *conn) unparkLocked() bool {
	if !c.parked.Valid() {
		return false
	}
	c.parked.Cancel()
	c.parked = netpeek.Parked{}
	return true
}

// fail ends the connection after err: a connection error is reported to the peer with GOAWAY.
func (c *conn) fail(err error) error {
	if errors.Is(err, http2.ErrFrameTooLarge) {
		err = http2.ConnectionError(http2.ErrCodeFrameSize)
	}
	var ce http2.ConnectionError
	c.mu.Lock()
	defer c.mu.Unlock()
	if errors.As(err, &ce) && !c.closed {
		_ = c.fr.WriteGoAway(c.lastID, http2.ErrCode(ce), nil)
		_ = c.flushLocked()
		// Give the peer a moment to read the GOAWAY before the close (a reset could
		// discard it): stop reading, then close after the write drained.
		if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
			_ = c.nc.SetReadDeadline(time.Now().Add(time.Second))
			_, _ = io.Copy(io.Discard, io.LimitReader(c.br, 1<<20))
		}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, errConnClosed) || c.closed {
		return nil
	}
	return err
}

// flushLocked sends the buffered frames, under the write deadline.
func (c *conn) flushLocked() error {
	if c.bw == nil { // resting: nothing written
		return nil
	}
	if c.bw.Buffered() == 0 {
		// Nothing buffered, but a large write that went past the buffer straight to the
		// socket may have failed: the writer keeps that error, and the connection is over.
		if _, err := c.bw.Write(nil); err != nil && !c.closed {
			c.closed = true
			c.cond.Broadcast()
			c.nc.Close()
			return err
		}
		return nil
	}
	if c.closed {
		return errConnClosed
	}
	c.armWriteLocked()
	if err := c.bw.Flush(); err != nil {
		c.closed = true
		c.cond.Broadcast()
		c.nc.Close()
		return err
	}
	return nil
}

// armWriteLocked sets the write deadline for what is written next: a socket write that
// waits longer than the write timeout fails, and the connection with it.
func (c *conn) armWriteLocked() {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.lim.WriteTimeout))
}

// handle acts on one frame, under c.mu. A stream error is answered with RST_STREAM here; the
// error returned ends the connection.
func (c *conn) handle(f http2.Frame) error {
	err := c.handleFrame(f)
	var se http2.StreamError
	if errors.As(err, &se) {
		return c.resetStream(se.StreamID, se.Code, true)
	}
	return err
}

// resetStream sends RST_STREAM and forgets the stream; byPeer counts it against the peer's
// stream-error budget.
func (c *conn) resetStream(id uint32, code http2.ErrCode, byPeer bool) error {
	if st := c.streams[id]; st != nil {
		st.abort(fmt.Errorf("h2: stream reset by the server (%v)", code))
		c.closeStream(st)
	}
	if byPeer {
		now := time.Now().Truncate(time.Second)
		if !now.Equal(c.errSecond) {
			c.errSecond, c.errCount = now, 0
		}
		if c.errCount++; c.errCount > c.lim.MaxStreamErrors {
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
	}
	return c.fr.WriteRSTStream(id, code)
}

func (c *conn) handleFrame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return c.onHeaders(f)
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		if f.NumSettings() > maxSettings {
			// x/net's defence: a frame that large is a peer wasting our time. (x/net refuses
			// a setting repeated in one frame as well; RFC 9113 lets the last value win, and
			// h2spec 6.5.3/1 checks that it does.)
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if err := f.ForeachSetting(c.applySetting); err != nil {
			return err
		}
		c.wake = true
		return c.fr.WriteSettingsAck()
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		return c.fr.WritePing(true, f.Data)
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.RSTStreamFrame:
		if c.idle(f.StreamID) {
			return http2.ConnectionError(http2.ErrCodeProtocol) // RST_STREAM on an idle stream
		}
		if st := c.streams[f.StreamID]; st != nil {
			st.abort(fmt.Errorf("h2: stream reset by the client (%v)", f.ErrCode))
			c.closeStream(st)
		}
		return nil
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
		return nil // priorities are ignored (RFC 9113 §5.3.2)
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // clients cannot push
	case *http2.GoAwayFrame:
		return nil // the peer opens no new stream; ours finish
	case *http2.ContinuationFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // the Framer joins valid ones
	}
	return nil // unknown frame types are ignored
}

func (c *conn) applySetting(s http2.Setting) error {
	if err := s.Valid(); err != nil {
		return err
	}
	switch s.ID {
	case http2.SettingInitialWindowSize:
		delta := int32(s.Val) - c.peerWin
		c.peerWin = int32(s.Val)
		for _, st := range c.streams {
			if delta > 0 && st.sendWin > maxWindow-delta {
				return http2.ConnectionError(http2.ErrCodeFlowControl)
			}
			st.sendWin += delta
		}
	case http2.SettingMaxFrameSize:
		c.peerMax = s.Val
	case http2.SettingHeaderTableSize:
		c.peerTable = s.Val
		c.enc.SetMaxDynamicTableSizeLimit(s.Val)
	}
	return nil
}

func (c *conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int32(f.Increment)
	if f.StreamID == 0 {
		if c.sendWin > maxWindow-inc {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.sendWin += inc
		c.wake = true
		return nil
	}
	st := c.streams[f.StreamID]
	if st == nil {
		if c.idle(f.StreamID) {
			return http2.ConnectionError(http2.ErrCodeProtocol) // idle stream
		}
		return nil
	}
	if st.sendWin > maxWindow-inc {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeFlowControl}
	}
	st.sendWin += inc
	c.wake = true
	return nil
}

func (c *conn) onData(f *http2.DataFrame) error {
	id := f.StreamID
	n := int32(f.Length) // padding counts
	if n > c.recvWin {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvWin -= n
	st := c.streams[id]
	if st == nil || st.recvDone {
		// Not ours to read: give the connection window back at once.
		if err := c.consumedLocked(nil, n); err != nil {
			return err
		}
		if c.idle(id) {
			return http2.ConnectionError(http2.ErrCodeProtocol) // DATA on an idle stream
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
	}
	if n > st.recvWin {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl}
	}
	st.recvWin -= n
	data := f.Data()
	st.received += int64(len(data))
	if st.declared >= 0 && st.received > st.declared {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol} // more than content-length
	}
	if pad := n - int32(len(data)); pad > 0 {
		if err := c.consumedLocked(st, pad); err != nil {
			return err
		}
	}
	if st.body != nil && !st.body.discard {
		st.body.buf.Write(data)
		st.body.cond.Broadcast()
	} else if err := c.consumedLocked(st, int32(len(data))); err != nil {
		return err
	}
	if f.StreamEnded() {
		return c.endRequest(st)
	}
	return nil
}

// endRequest marks the request side of st complete (END_STREAM).
func (c *conn) endRequest(st *stream) error {
	if st.declared >= 0 && st.received != st.declared {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol} // less than content-length
	}
	st.recvDone = true
	if st.body != nil {
		st.body.eof = true
		st.body.cond.Broadcast()
	}
	if st.sendDone {
		c.closeStream(st)
	}
	return nil
}

// consumedLocked gives n bytes of receive window back, on the connection and (when st is
// still reading) on st, batching WINDOW_UPDATEs: one goes out once half a window is owed.
func (c *conn) consumedLocked(st *stream, n int32) error {
	if n <= 0 || c.fr == nil { // nil: resting, every stream is over
		return nil
	}
	c.recvAck += n
	if c.recvAck >= c.lim.ConnWindowSize/2 {
		if err := c.fr.WriteWindowUpdate(0, uint32(c.recvAck)); err != nil {
			return err
		}
		c.recvWin += c.recvAck
		c.recvAck = 0
	}
	if st == nil || st.recvDone {
		return nil
	}
	st.recvAck += n
	if st.recvAck >= c.lim.InitialWindowSize/2 {
		if err := c.fr.WriteWindowUpdate(st.id, uint32(st.recvAck)); err != nil {
			return err
		}
		st.recvWin += st.recvAck
		st.recvAck = 0
	}
	return nil
}

// closeStream forgets a stream whose both sides are done (or that was reset).
func (c *conn) closeStream(st *stream) {
	if c.streams[st.id] != st {
		return
	}
	delete(c.streams, st.id)
	if st.body != nil && !st.body.eof {
		// Data still in flight for it is not ours to read: return what was buffered.
		st.body.discard = true
		if b := int32(st.body.buf.Len()); b > 0 {
			st.body.buf.Reset()
			_ = c.consumedLocked(nil, b)
		}
	}
	c.cond.Broadcast()
	c.resetIdleLocked()
}

// resetIdleLocked arms the idle timer when the connection has no stream left (see onIdle), and
// stops it when it has.
func (c *conn) resetIdleLocked() {
	if len(c.streams) > 0 || c.running > 0 || c.closed {
		if c.idleTimer != nil {
			c.idleTimer.Stop()
		}
		return
	}
	c.idleAt = time.Now()
	d := c.lim.IdleTimeout
	if c.canRest() && (d < 0 || c.lim.IdleRest < d) {
		d = c.lim.IdleRest
	}
	if d < 0 {
		return
	}
	if c.idleTimer == nil {
		c.idleTimer = time.AfterFunc(d, c.onIdle)
	} else {
		c.idleTimer.Reset(d)
	}
}

// goAway tells the peer no new stream will be taken (GOAWAY with the last stream started);
// the connection closes once the started streams end.
func (c *conn) goAway() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.goingAway || c.unparkLocked() {
		return // a parked connection says GOAWAY when it comes back (resume)
	}
	if c.fr == nil {
		// Still in the handshake: nothing started, nothing to tell.
		c.closed = true
		c.nc.Close()
		return
	}
	c.goingAway, c.goAwayID = true, c.lastID
	_ = c.fr.WriteGoAway(c.lastID, http2.ErrCodeNo, nil)
	_ = c.flushLocked()
	if len(c.streams) == 0 && c.running == 0 {
		// Nothing to finish: the reader ends when the peer closes; close first.
		c.closed = true
		_ = c.nc.SetReadDeadline(time.Now().Add(time.Second))
	}
}

// maxSettings is the most entries a SETTINGS frame may carry (eight settings are defined).
const maxSettings = 100

// idle says whether stream id is idle (RFC 9113 §5.1): a client's (odd) above the last one it
// opened, or any even one (those are the server's, and this server pushes none). Only HEADERS
// and PRIORITY may come on an idle stream; anything else is a connection error.
func (c *conn) idle(id uint32) bool { return id > c.lastID || id%2 == 0 }

func (c *conn) onHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if f.HasPriority() && f.Priority.StreamDep == id {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	if st := c.streams[id]; st != nil { // trailers
		if st.recvDone {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
		}
		if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
		}
		if st.req != nil {
			for _, hf := range f.RegularFields() {
				k := http.CanonicalHeaderKey(hf.Name)
				if st.req.Trailer != nil {
					if _, declared := st.req.Trailer[k]; declared {
						st.req.Trailer[k] = append(st.req.Trailer[k][:0:0], hf.Value)
					}
				}
			}
		}
		return c.endRequest(st)
	}
	if id <= c.lastID {
		return http2.ConnectionError(http2.ErrCodeStreamClosed) // a closed stream, or ids not increasing
	}
	c.lastID = id
	if c.goingAway || len(c.streams) >= int(c.lim.MaxConcurrentStreams) {
		// Draining, or over the advertised SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 §5.1.2):
		// refused, so the client may retry it.
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	}
	if f.Truncated {
		// The header list is over MaxHeaderListSize: answered 431 without the handler.
		st := c.newStream(id, f)
		st.recvDone = f.StreamEnded()
		c.streams[id] = st
		return c.answerLocked(st, http.StatusRequestHeaderFieldsTooLarge)
	}
	st := c.newStream(id, f)
	req, code := c.newRequest(st, f)
	if code != 0 {
		return http2.StreamError{StreamID: id, Code: code}
	}
	st.req = req
	c.streams[id] = st
	if f.StreamEnded() {
		st.recvDone = true
	}
	c.resetIdleLocked()
	return c.dispatch(st)
}

func (c *conn) newStream(id uint32, f *http2.MetaHeadersFrame) *stream {
	return &stream{c: c, id: id, sendWin: c.peerWin, recvWin: c.lim.InitialWindowSize, declared: -1}
}

// dispatch runs st's handler, or queues it behind the running ones; a peer that opens more
// streams than the queue holds is told ENHANCE_YOUR_CALM.
func (c *conn) dispatch(st *stream) error {
	if c.running < int(c.lim.MaxConcurrentStreams) {
		c.running++
		workers.run(st)
		return nil
	}
	if len(c.queue) >= c.lim.MaxQueuedStreams {
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	c.queue = append(c.queue, st)
	return nil
}

// handlerDone starts the next queued stream that is still open.
func (c *conn) handlerDone() {
	c.running--
	if c.ended && c.running == 0 {
		// The connection ended while handlers ran: the last one lets go of its buffers.
		defer c.releaseLocked()
	}
	for len(c.queue) > 0 && c.running < int(c.lim.MaxConcurrentStreams) {
		st := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		if c.streams[st.id] != st {
			continue // reset while queued
		}
		c.running++
		workers.run(st)
	}
	c.resetIdleLocked()
	if c.goingAway && c.running == 0 && len(c.streams) == 0 {
		c.closed = true
		_ = c.nc.SetReadDeadline(time.Now()) // wake the reader: the drain is over
	}
}

func (c *conn) runHandler(st *stream) {
	st.rw = responseWriter{st: st, header: make(http.Header)}
	w := &st.rw
	st.w = w
	defer func() {
		if p := recover(); p != nil && p != http.ErrAbortHandler {
			buf := make([]byte, 16<<10)
			buf = buf[:runtime.Stack(buf, false)]
			c.s.logger().Error("h2: panic serving request", "remote", c.remote, "panic", fmt.Sprint(p), "stack", string(buf))
			w.abort()
		} else if p == http.ErrAbortHandler {
			w.abort()
		} else {
			w.finish()
		}
		st.cancel()
		c.mu.Lock()
		c.handlerDone()
		c.mu.Unlock()
	}()
	c.s.Handler.ServeHTTP(w, st.req)
}

// answerLocked answers st with a bare status, without the handler (431 for headers over the
// limit).
func (c *conn) answerLocked(st *stream, code int) error {
	c.hbuf.Reset()
	_ = c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(code)})
	_ = c.enc.WriteField(hpack.HeaderField{Name: "content-length", Value: "0"})
	st.sendDone = true
	if err := c.writeHeaderBlock(st.id, c.hbuf.Bytes(), true); err != nil {
		return err
	}
	if st.recvDone {
		c.closeStream(st)
		return nil
	}
	// The request is still being sent: the answer is final, so stop it.
	c.closeStream(st)
	return c.fr.WriteRSTStream(st.id, http2.ErrCodeNo)
}

// writeHeaderBlock writes a header block as HEADERS and CONTINUATION frames within the peer's
// frame size.
func (c *conn) writeHeaderBlock(id uint32, blk []byte, end bool) error {
	first := true
	for first || len(blk) > 0 {
		n := min(len(blk), int(c.peerMax))
		var err error
		if first {
			err = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: blk[:n], EndStream: end, EndHeaders: n == len(blk)})
		} else {
			err = c.fr.WriteContinuation(id, n == len(blk), blk[:n])
		}
		if err != nil {
			return err
		}
		blk, first = blk[n:], false
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
