package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// h3Server serves HTTP/3 on one UDP socket under limits that can change while it serves (the
// Proxy's spec.http), as the HTTP/1.1 and HTTP/2 servers do: a connection takes the limits in
// force when it arrives and keeps them. The QUIC ones (idle timeout, streams, receive windows)
// come from the listener's GetConfigForClient; the HTTP/3 ones (idle timeout without requests,
// header bytes) are fields http3.Server reads for each connection without a lock, so each
// version of the limits has an http3.Server of its own, kept while connections it serves
// are open.
type h3Server struct {
	handler http.Handler
	log     *slog.Logger
	ln      *quic.EarlyListener
	cur     atomic.Pointer[h3Version]

	mu      sync.Mutex
	servers map[*http3.Server]int // connections open on each version's server
	closed  bool
}

// h3Version is one version of the limits: the QUIC configuration new connections get and
// the http3.Server that serves them.
type h3Version struct {
	quic *quic.Config
	srv  *http3.Server
}

// h3Limits are what the listener's limits say about HTTP/3; zero fields keep the defaults.
type h3Limits struct {
	IdleTimeout          time.Duration
	MaxHeaderBytes       int
	MaxConcurrentStreams int64
	StreamWindow         uint64
	ConnWindow           uint64
}

// HTTP/3 defaults where spec.http is silent (besides the idle timeout all servers share): as
// HTTP/2's, 250 streams (quic-go's own default is 100) and 64 KiB of header block (http3's
// own is net/http's 1 MB).
const (
	defaultH3Streams     = 250
	defaultH3HeaderBytes = 64 << 10
)

// newH3Server listens for QUIC on pc with tlsConfig (its ALPN made h3's).
func newH3Server(pc net.PacketConn, tlsConfig *tls.Config, h http.Handler, log *slog.Logger) (*h3Server, error) {
	s := &h3Server{handler: h, log: log, servers: map[*http3.Server]int{}}
	s.setLimits(h3Limits{})
	base := &quic.Config{
		// No 0-RTT: early data can be replayed, and the routes do not say which requests
		// would be safe to take from it.
		Allow0RTT: false,
		GetConfigForClient: func(*quic.ClientInfo) (*quic.Config, error) {
			return s.cur.Load().quic, nil
		},
	}
	ln, err := quic.ListenEarly(pc, http3.ConfigureTLSConfig(tlsConfig), base)
	if err != nil {
		return nil, err
	}
	s.ln = ln
	return s, nil
}

// setLimits makes the limits connections arriving from now on get; open ones keep theirs.
func (s *h3Server) setLimits(l h3Limits) {
	idle := l.IdleTimeout
	if idle <= 0 {
		idle = defaultIdleTimeout
	}
	streams := l.MaxConcurrentStreams
	if streams <= 0 {
		streams = defaultH3Streams
	}
	qc := &quic.Config{Allow0RTT: false, MaxIdleTimeout: idle, MaxIncomingStreams: streams}
	if w := l.StreamWindow; w > 0 {
		qc.InitialStreamReceiveWindow = w
		qc.MaxStreamReceiveWindow = max(w, 6<<20) // quic-go's auto-tuning ceiling
	}
	if w := l.ConnWindow; w > 0 {
		qc.InitialConnectionReceiveWindow = w
		qc.MaxConnectionReceiveWindow = max(w, 15<<20)
	}
	hb := l.MaxHeaderBytes
	if hb <= 0 {
		hb = defaultH3HeaderBytes
	}
	srv := &http3.Server{Handler: s.handler, IdleTimeout: idle, MaxHeaderBytes: hb, Logger: s.log}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if old := s.cur.Load(); old != nil && s.servers[old.srv] == 0 {
		delete(s.servers, old.srv)
	}
	s.servers[srv] = 0
	s.cur.Store(&h3Version{quic: qc, srv: srv})
}

// serve accepts connections until the listener is closed, each served by the server of the
// limits in force when it arrived.
func (s *h3Server) serve() error {
	for {
		conn, err := s.ln.Accept(context.Background())
		if err != nil {
			if errors.Is(err, quic.ErrServerClosed) {
				return http.ErrServerClosed
			}
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = conn.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
			continue
		}
		srv := s.cur.Load().srv
		s.servers[srv]++
		s.mu.Unlock()
		go func() {
			if err := srv.ServeQUICConn(conn); errors.Is(err, http.ErrServerClosed) {
				_ = conn.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
			}
			s.mu.Lock()
			s.servers[srv]--
			if s.servers[srv] == 0 && s.cur.Load().srv != srv && !s.closed {
				delete(s.servers, srv)
			}
			s.mu.Unlock()
		}()
	}
}

// shutdown stops taking connections and drains the open ones (GOAWAY, their requests finish)
// until ctx ends.
func (s *h3Server) shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closed = true
	servers := make([]*http3.Server, 0, len(s.servers))
	for srv := range s.servers {
		servers = append(servers, srv)
	}
	s.mu.Unlock()
	_ = s.ln.Close()
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = srv.Shutdown(ctx)
		}()
	}
	wg.Wait()
}
