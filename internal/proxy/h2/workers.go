package h2

import "sync"

// workers run the streams' handlers on goroutines kept between streams. A new goroutine
// starts with a 2 KiB stack and grows it through the proxy's filters and upstream client,
// copying it each time it doubles: about 7 % of the CPU of a proxied request, measured. A
// kept goroutine has grown it already (and the collector shrinks the stacks of those that
// stay idle).
var workers workerPool

// maxIdleWorkers bounds the goroutines kept waiting for a stream, across every server.
const maxIdleWorkers = 128

type workerPool struct {
	mu   sync.Mutex
	idle []chan *stream // last in, first out: the one used most recently is the warmest
}

// run runs st's handler on an idle worker, or on a new one.
func (p *workerPool) run(st *stream) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		ch := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		ch <- st // buffered: never blocks
		return
	}
	p.mu.Unlock()
	go p.work(st)
}

// work runs handlers until the pool has enough idle workers.
func (p *workerPool) work(st *stream) {
	var ch chan *stream
	for {
		st.c.runHandler(st)
		if ch == nil {
			ch = make(chan *stream, 1)
		}
		p.mu.Lock()
		if len(p.idle) >= maxIdleWorkers {
			p.mu.Unlock()
			return
		}
		p.idle = append(p.idle, ch)
		p.mu.Unlock()
		st = <-ch
	}
}
