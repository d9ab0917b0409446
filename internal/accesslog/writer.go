package accesslog

import (
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Writer takes access-log lines from request goroutines and writes them to a sink from its
// own goroutine, so a slow or stuck sink (a paused `| less`, a full disk, a collector that
// does not answer) never holds a request: Write copies the line into a buffer under a short
// lock and returns. Lines are batched into one write per FlushInterval (or whenever 64 KiB
// are pending). When Limit bytes wait already, further lines are dropped and counted
// (Dropped), never queued without bound.
type Writer struct {
	// fmu serialises flushes (the background one and Flush), which swap the two buffers.
	fmu     sync.Mutex
	mu      sync.Mutex
	pending []byte
	spare   []byte
	limit   int
	closed  bool
	wake    chan struct{}
	done    chan struct{}
	sink    io.Writer
	dropped atomic.Uint64
	written atomic.Uint64
	errs    atomic.Uint64
	// OnDrop, if set, is called (off the lock) once per dropped line; metrics hook.
	onDrop func()
}

// WriterOptions tune a Writer.
type WriterOptions struct {
	// Limit is the most bytes waiting for the sink (default 4 MiB); lines beyond are dropped.
	Limit int
	// FlushInterval bounds how long a line waits (default 50 ms): `tail -f` sees each line
	// within it, and under load many lines share one write.
	FlushInterval time.Duration
	// OnDrop is called once per dropped line (e.g. to count it in a metric).
	OnDrop func()
}

// flushSize triggers an early flush: enough to amortise the write, small enough for caches.
const flushSize = 64 << 10

// NewWriter starts a Writer on sink. Close stops it.
func NewWriter(sink io.Writer, opts WriterOptions) *Writer {
	if opts.Limit <= 0 {
		opts.Limit = 4 << 20
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 50 * time.Millisecond
	}
	w := &Writer{limit: opts.Limit, sink: sink, wake: make(chan struct{}, 1), done: make(chan struct{}), onDrop: opts.OnDrop,
		pending: make([]byte, 0, flushSize), spare: make([]byte, 0, flushSize)}
	go w.run(opts.FlushInterval)
	return w
}

// Write queues one line (which should end in "\n"); it never blocks on the sink. It reports
// whether the line was queued (false: dropped, the buffer being full, or the writer closed).
func (w *Writer) Write(line []byte) bool {
	w.mu.Lock()
	if w.closed || len(w.pending)+len(line) > w.limit {
		w.mu.Unlock()
		w.dropped.Add(1)
		if w.onDrop != nil {
			w.onDrop()
		}
		return false
	}
	w.pending = append(w.pending, line...)
	full := len(w.pending) >= flushSize
	w.mu.Unlock()
	if full {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// Dropped counts lines dropped because the sink could not keep up.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Written counts bytes the sink accepted; Errors counts failed writes to it.
func (w *Writer) Written() uint64 { return w.written.Load() }

// Errors counts writes the sink failed (their lines are lost).
func (w *Writer) Errors() uint64 { return w.errs.Load() }

func (w *Writer) run(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		closed := false
		select {
		case <-t.C:
		case _, ok := <-w.wake:
			closed = !ok
		}
		w.flush()
		if closed {
			return
		}
	}
}

// flush hands the pending bytes to the sink (outside the lock: Write goes on meanwhile).
func (w *Writer) flush() {
	w.fmu.Lock()
	defer w.fmu.Unlock()
	w.mu.Lock()
	buf := w.pending
	w.pending = w.spare[:0]
	w.mu.Unlock()
	if len(buf) > 0 {
		n, err := w.sink.Write(buf)
		w.written.Add(uint64(n))
		if err != nil {
			w.errs.Add(1)
		}
	}
	if cap(buf) > 4*flushSize { // a burst grew it: do not keep the peak forever
		buf = make([]byte, 0, flushSize)
	}
	w.mu.Lock()
	w.spare = buf[:0]
	w.mu.Unlock()
}

// Flush writes out what is pending now, on the caller's goroutine (tests, shutdown).
func (w *Writer) Flush() {
	w.flush()
}

// Close writes out what is pending and stops the writer. Lines written after Close are
// dropped. It does not close the sink.
func (w *Writer) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return
	}
	w.closed = true
	w.mu.Unlock()
	close(w.wake)
	<-w.done
}

// File is an access-log file that can be reopened (after logrotate moved it away: SIGHUP).
// Writes to it come from one Writer goroutine; Reopen may be called from any goroutine.
type File struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// OpenFile opens (creating, appending) an access-log file.
func OpenFile(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	return &File{path: path, f: f}, nil
}

// Write appends to the file currently open.
func (f *File) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.f.Write(p)
}

// Reopen closes the file and opens its path again, so lines go to a new file once the old
// one was renamed. On failure the old file stays in use.
func (f *File) Reopen() error {
	nf, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	f.mu.Lock()
	old := f.f
	f.f = nf
	f.mu.Unlock()
	return old.Close()
}

// Close closes the file.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.f.Close()
}
