// Package echo is an in-process backend byte-compatible with the Gateway API conformance
// suite's echo-basic server (HTTP mode): the JSON echo body and headers, /health,
// /status/NNN, the /retry/ simulator, ?delay=, X-Echo-Set-Header, a WebSocket echo on /ws, and
// h2c. Unlike the upstream binary it binds a given address, so every "pod" of the conformance
// orchestrator gets its own loopback IP, and it keeps a per-pod log for the pod-log stub the
// mirror tests read.
package echo

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/websocket"
)

// Identity is what the echo reports about where it runs (the suite asserts on these).
type Identity struct {
	Namespace string
	Ingress   string
	Service   string
	Pod       string
	// HTTPPort is reported as "httpPort" whatever listener served the request.
	HTTPPort string
}

// Server is one echo "pod". Its handler serves HTTP/1.1, h2c (prior knowledge and Upgrade)
// and, given a certificate, HTTPS with h2.
type Server struct {
	id  Identity
	log *logBuffer

	mu      sync.Mutex
	retries map[string]int
	servers []*http.Server
	tcp     []net.Listener   // TCP echo listeners
	packets []net.PacketConn // UDP echo and DNS sockets
}

// New returns a server for id; call Listen for each address it should answer on.
func New(id Identity) *Server {
	return &Server{id: id, log: &logBuffer{}, retries: map[string]int{}}
}

// ListenOptions choose what a listener speaks.
type ListenOptions struct {
	// Cert makes the listener TLS (h2 and HTTP/1.1).
	Cert *tls.Certificate
	// ClientCAs verifies client certificates when the client sends one.
	ClientCAs *x509.CertPool
	// H2COnly answers 400 "Expected h2c request" to plain HTTP/1.1 (echo-basic's H2C_PORT), so
	// a test can tell that the gateway spoke h2c to the backend.
	H2COnly bool
	// GRPC serves the suite's GrpcEcho service instead (echo-basic's GRPC_ECHO_SERVER), over h2c
	// or, with Cert, h2.
	GRPC bool
	// TCP speaks the suite's TCP echo protocol instead of HTTP (echo-basic's TCP_ECHO_SERVER).
	TCP bool
}

// Listen serves plain HTTP/1.1 and h2c on addr ("127.0.1.2:3000"), or TLS with Cert.
func (s *Server) Listen(addr string, opts ListenOptions) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if opts.TCP {
		_, port, _ := net.SplitHostPort(addr)
		s.mu.Lock()
		s.tcp = append(s.tcp, ln)
		s.mu.Unlock()
		if opts.Cert != nil {
			ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*opts.Cert}, MinVersion: tls.VersionTLS12})
		}
		go s.serveTCP(ln, port, opts.Cert != nil)
		return ln.Addr(), nil
	}
	var h http.Handler = s
	if opts.GRPC {
		h = s.grpcHandler()
	}
	if opts.H2COnly {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor != 2 && r.Header.Get("Upgrade") != "h2c" {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, "Expected h2c request")
				return
			}
			s.ServeHTTP(w, r)
		})
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	if opts.Cert != nil {
		srv.Protocols.SetHTTP2(true)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*opts.Cert}}
		if opts.ClientCAs != nil {
			srv.TLSConfig.ClientCAs = opts.ClientCAs
			srv.TLSConfig.ClientAuth = tls.VerifyClientCertIfGiven
		}
		go srv.ServeTLS(ln, "", "")
	} else {
		srv.Protocols.SetUnencryptedHTTP2(true)
		go srv.Serve(ln)
	}
	return ln.Addr(), nil
}

// Close stops every listener.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, srv := range s.servers {
		srv.Close()
	}
	s.servers = nil
	for _, ln := range s.tcp {
		ln.Close()
	}
	s.tcp = nil
	for _, pc := range s.packets {
		pc.Close()
	}
	s.packets = nil
}

// Log returns what the pod printed (one line per echoed request), for the pod-log stub.
func (s *Server) Log() []byte { return s.log.since(time.Time{}) }

// LogSince returns the lines printed at or after t (kubectl logs --since-time).
func (s *Server) LogSince(t time.Time) []byte { return s.log.since(t) }

var statusPath = regexp.MustCompile(`^/status/(\d\d\d)$`)

// ServeHTTP routes like echo-basic: /health, /status/NNN, /retry/..., /ws, else echo.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.ReplaceAll(r.URL.Path, "//", "/")
	switch {
	case path == "/health":
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "OK")
	case strings.HasPrefix(path, "/status/"):
		m := statusPath.FindStringSubmatch(r.RequestURI)
		if m == nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		code, _ := strconv.Atoi(m[1])
		w.WriteHeader(code)
	case strings.HasPrefix(path, "/retry/"):
		s.retry(w, r)
	case path == "/ws":
		websocket.Handler(func(ws *websocket.Conn) { io.Copy(ws, ws) }).ServeHTTP(w, r)
	default:
		s.echo(w, r)
	}
}

// response is the echo body, field order as echo-basic marshals it.
type response struct {
	Path      string              `json:"path"`
	Host      string              `json:"host"`
	Method    string              `json:"method"`
	Proto     string              `json:"proto"`
	Headers   map[string][]string `json:"headers"`
	HTTPPort  string              `json:"httpPort"`
	Namespace string              `json:"namespace"`
	Ingress   string              `json:"ingress"`
	Service   string              `json:"service"`
	Pod       string              `json:"pod"`
	TLS       *tlsInfo            `json:"tls,omitempty"`
}

type tlsInfo struct {
	Version            string   `json:"version"`
	PeerCertificates   []string `json:"peerCertificates,omitempty"`
	ServerName         string   `json:"serverName"`
	NegotiatedProtocol string   `json:"negotiatedProtocol,omitempty"`
	CipherSuite        string   `json:"cipherSuite"`
}

func (s *Server) echo(w http.ResponseWriter, r *http.Request) {
	if d := r.URL.Query().Get("delay"); d != "" {
		delay, err := time.ParseDuration(d)
		if err != nil {
			processError(w, err, http.StatusInternalServerError)
			return
		}
		time.Sleep(delay)
	}
	hdr := r.Header.Clone()
	hdr.Del("Host")
	resp := response{
		Path: r.RequestURI, Host: r.Host, Method: r.Method, Proto: r.Proto, Headers: hdr,
		Namespace: s.id.Namespace, Ingress: s.id.Ingress, Service: s.id.Service, Pod: s.id.Pod, HTTPPort: s.id.HTTPPort,
	}
	if st := r.TLS; st != nil {
		resp.TLS = &tlsInfo{Version: tlsVersion(st.Version), ServerName: st.ServerName, NegotiatedProtocol: st.NegotiatedProtocol, CipherSuite: tls.CipherSuiteName(st.CipherSuite)}
		for _, c := range st.PeerCertificates {
			resp.TLS.PeerCertificates = append(resp.TLS.PeerCertificates, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})))
		}
	}
	body, err := json.MarshalIndent(resp, "", " ")
	if err != nil {
		processError(w, err, http.StatusInternalServerError)
		return
	}
	for _, set := range r.Header.Values("X-Echo-Set-Header") {
		for _, pair := range strings.Split(set, ",") {
			name, value, ok := strings.Cut(pair, ":")
			if !ok {
				continue
			}
			name = strings.TrimSpace(name)
			if old, exists := w.Header()[name]; exists && len(old) > 0 {
				w.Header()[name] = []string{old[0] + "," + value}
			} else {
				w.Header()[name] = []string{value} // casing kept, as echo-basic does
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.log.printf("Echoing back request made to %s to client (%s)\n", r.RequestURI, r.RemoteAddr)
	w.Write(body)
}

// processError answers {"message": err} as JSON, as echo-basic does.
func processError(w http.ResponseWriter, err error, code int) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	body, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{err.Error()})
	w.WriteHeader(code)
	w.Write(body)
}

// retry fails the first succeedAfter attempts of a uuid (TCP reset by default, the status
// responseCode if given, after delayRetry if given), then echoes.
func (s *Server) retry(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := q.Get("uuid")
	if id == "" {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "uuid is required")
		return
	}
	after, err := strconv.Atoi(q.Get("succeedAfter"))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "succeedAfter is required")
		return
	}
	s.mu.Lock()
	failing := s.retries[id] < after
	if failing {
		s.retries[id]++
	}
	s.mu.Unlock()
	if !failing {
		s.echo(w, r)
		return
	}
	if d := q.Get("delayRetry"); d != "" {
		delay, err := time.ParseDuration(d)
		if err != nil {
			processError(w, err, http.StatusInternalServerError)
			return
		}
		time.Sleep(delay)
	}
	if code, err := strconv.Atoi(q.Get("responseCode")); err == nil {
		w.WriteHeader(code)
		return
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // HTTP/2 cannot hijack: reset the stream instead
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS10:
		return "TLSv1.0"
	}
	return fmt.Sprintf("unknown(%x)", v)
}

// logBuffer keeps the pod's output with the time of each line.
type logBuffer struct {
	mu    sync.Mutex
	lines []logLine
}

type logLine struct {
	at   time.Time
	text string
}

func (l *logBuffer) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, logLine{at: time.Now(), text: fmt.Sprintf(format, args...)})
}

func (l *logBuffer) since(t time.Time) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b bytes.Buffer
	for _, line := range l.lines {
		if !line.at.Before(t) {
			b.WriteString(line.text)
		}
	}
	return b.Bytes()
}
