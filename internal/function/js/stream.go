package js

import (
	"context"
	"errors"
	"io"
	"sync"
)

// bodyStream is a streamed response body: the VM's goroutine sends the chunks a
// ReadableStream yields (host "chunk"), the gateway reads them. Sends wait for the reader,
// so a slow client holds the function back instead of its chunks piling up in memory.
type bodyStream struct {
	ch     chan []byte // closed by end, on the VM's goroutine, which alone sends
	cancel func()      // ends the invocation: Close calls it
	ended  bool        // read and written on the VM's goroutine only

	mu  sync.Mutex
	err error // why the stream ended early (nil: it ended well)

	buf []byte // the reader's unread part of a chunk
}

func newBodyStream(cancel func()) *bodyStream {
	return &bodyStream{ch: make(chan []byte, 4), cancel: cancel}
}

// send hands one chunk to the reader; false when the invocation ended first (its deadline,
// or the reader closed the stream).
func (s *bodyStream) send(ctx context.Context, b []byte) bool {
	select {
	case s.ch <- b:
		return true
	case <-ctx.Done():
		return false
	}
}

// end closes the stream, with err when the function failed before its end.
func (s *bodyStream) end(err error) {
	if s.ended {
		return
	}
	s.ended = true
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	close(s.ch)
}

// errStreamCut is what a reader sees when the invocation ended without the stream's end.
var errStreamCut = errors.New("js: the function's response stream ended early")

func (s *bodyStream) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		b, ok := <-s.ch
		if !ok {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.err != nil {
				return 0, s.err
			}
			return 0, io.EOF
		}
		s.buf = b
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// Close stops the function's stream (and the invocation) if it has not ended.
func (s *bodyStream) Close() error {
	s.cancel()
	return nil
}
