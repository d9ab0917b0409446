package netpeek

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
)

// Parker holds idle connections without a goroutine each: their sockets wait in one epoll
// set, watched by one goroutine, and a parked connection's callback runs on a new goroutine
// once bytes arrive or the peer hangs up. A Go server otherwise keeps a goroutine (and the
// stack it grew while answering, often 8–32 KiB) blocked on every idle keep-alive
// connection; parked, 10k idle clients cost their connection structs and nothing else.
//
// The socket stays registered with the Go runtime's poller as well (an fd may sit in several
// epoll sets); the resumed goroutine reads it the usual way.
type Parker struct {
	once sync.Once
	epfd int
	err  error

	mu     sync.Mutex
	nextID uint64
	// parked holds the parked sockets by value: 10k idle clients are one map, not 10k small
	// objects scattered among requests' garbage.
	parked map[uint64]parked
}

// parked is a parked socket and who takes it up.
type parked struct {
	fd int
	r  Resumer
}

// Resumer is what a parked connection is given back to.
type Resumer interface {
	// Resume runs on a new goroutine: err is nil when the connection has bytes to read (or
	// its peer closed it), ErrCancelled after Cancel.
	Resume(err error)
}

// Parked is the ticket of one parked connection; the zero Parked is none.
type Parked struct {
	p  *Parker
	id uint64
}

// DefaultParker is the process's Parker, started on first use.
var DefaultParker = &Parker{}

// ErrCancelled is what a connection's callback gets when it was unparked by Cancel.
var ErrCancelled = errors.New("netpeek: park cancelled")

func (p *Parker) start() {
	p.epfd, p.err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if p.err != nil {
		return
	}
	p.parked = map[uint64]parked{}
	// The epoll fd is itself pollable: waiting on it through the runtime's poller (not in a
	// blocking EpollWait) wakes the watcher as fast as any socket read.
	if p.err = syscall.SetNonblock(p.epfd, true); p.err != nil {
		return
	}
	rc, err := os.NewFile(uintptr(p.epfd), "netpeek-epoll").SyscallConn()
	if err != nil {
		p.err = err
		return
	}
	go p.run(rc)
}

func (p *Parker) run(rc syscall.RawConn) {
	events := make([]syscall.EpollEvent, 256)
	for {
		var n int
		err := rc.Read(func(fd uintptr) bool {
			var werr error
			n, werr = syscall.EpollWait(int(fd), events, 0)
			return n > 0 || (werr != nil && !errors.Is(werr, syscall.EINTR))
		})
		if err != nil {
			return // the epoll fd is never closed: not reached in practice
		}
		for i := range events[:max(n, 0)] {
			id := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
			if r := p.take(id); r != nil {
				go r.Resume(nil)
			}
		}
	}
}

// take removes id from the set and its socket from the epoll set, and returns who resumes it
// (nil if it was taken already).
func (p *Parker) take(id uint64) Resumer {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.parked[id]
	if !ok {
		return nil
	}
	delete(p.parked, id)
	_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, e.fd, nil)
	return e.r
}

// Park registers nc and returns at once; r.Resume(nil) runs on a new goroutine when nc has
// bytes to read or its peer closed it, r.Resume(ErrCancelled) after Cancel. It returns the
// zero Parked (and r is never called) when nc cannot be parked: not a socket, or no epoll
// here. The caller must not read nc, nor close it without Cancel first, while it is parked.
func (p *Parker) Park(nc net.Conn, r Resumer) Parked {
	p.once.Do(p.start)
	if p.err != nil {
		return Parked{}
	}
	rc, err := rawConn(nc)
	if rc == nil || err != nil {
		return Parked{}
	}
	var e Parked
	cerr := rc.Control(func(fd uintptr) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.nextID++
		id := p.nextID
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
			Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
		if syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev) != nil {
			return
		}
		e = Parked{p: p, id: id}
		p.parked[id] = parked{fd: int(fd), r: r}
	})
	if cerr != nil {
		return Parked{}
	}
	return e
}

// Valid says whether e is a parked connection's ticket (Park succeeded), not the zero Parked.
func (e Parked) Valid() bool { return e.p != nil }

// Cancel unparks e: its Resumer runs with ErrCancelled on a new goroutine, unless it already
// ran (or is about to) because the connection became readable; Cancel reports which. After
// Cancel returns, the connection may be closed.
func (e Parked) Cancel() bool {
	if e.p == nil {
		return false
	}
	r := e.p.take(e.id)
	if r == nil {
		return false
	}
	go r.Resume(ErrCancelled)
	return true
}

// Len is how many connections are parked.
func (p *Parker) Len() int {
	p.once.Do(p.start)
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}
