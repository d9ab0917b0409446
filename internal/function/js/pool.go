package js

import (
	"context"
	"sync"

	"apoxy.dev/apoxy/internal/function"
)

// pool bounds the VMs of one revision. A VM is made when none is idle and fewer than max
// exist; otherwise callers wait for one, honouring their ctx. VMs are made lazily, so a
// discarded one is replaced only when needed.
type pool struct {
	newInst func() (*instance, error)
	slots   chan struct{}  // one token per existing VM
	idle    chan *instance // VMs ready to run
	done    chan struct{}  // closed by Close

	mu     sync.Mutex
	busy   map[*instance]struct{}
	closed bool
	wg     sync.WaitGroup // busy VMs, which Close waits for
}

func newPool(max int, newInst func() (*instance, error)) *pool {
	return &pool{
		newInst: newInst,
		slots:   make(chan struct{}, max),
		idle:    make(chan *instance, max),
		done:    make(chan struct{}),
		busy:    map[*instance]struct{}{},
	}
}

// add puts a VM made outside get (the one Load checked the module with) in the pool.
func (p *pool) add(inst *instance) {
	p.slots <- struct{}{}
	p.idle <- inst
}

// get returns an idle VM, a new one, or waits for one.
func (p *pool) get(ctx context.Context) (*instance, error) {
	for {
		var inst *instance
		select {
		case inst = <-p.idle:
		default:
			select {
			case inst = <-p.idle:
			case p.slots <- struct{}{}:
				var err error
				if inst, err = p.newInst(); err != nil {
					<-p.slots
					return nil, err
				}
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-p.done:
				return nil, function.ErrClosed
			}
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			inst.close()
			<-p.slots
			return nil, function.ErrClosed
		}
		p.busy[inst] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		return inst, nil
	}
}

// put returns a VM after an invocation; keep false (it failed, timed out, ran out of
// memory) or a closed pool discards it.
func (p *pool) put(inst *instance, keep bool) {
	p.mu.Lock()
	delete(p.busy, inst)
	closed := p.closed
	p.mu.Unlock()
	if keep && !closed {
		p.idle <- inst
	} else {
		inst.close()
		<-p.slots
	}
	p.wg.Done()
}

func (p *pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Close frees the idle VMs, interrupts the busy ones and waits until they are freed.
func (p *pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return
	}
	p.closed = true
	close(p.done)
	for inst := range p.busy {
		inst.interrupt()
	}
	p.mu.Unlock()
	for {
		select {
		case inst := <-p.idle:
			inst.close()
			<-p.slots
			continue
		default:
		}
		break
	}
	p.wg.Wait()
	// A VM put back between the drain and now.
	for {
		select {
		case inst := <-p.idle:
			inst.close()
			<-p.slots
			continue
		default:
		}
		return
	}
}
