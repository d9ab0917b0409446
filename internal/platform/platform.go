// Package platform composes the running product: the API server, one controller per project
// and the shared data plane. `apoxy server`, `apoxy dev` and the in-process end-to-end tests
// all start it the same way.
package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"apoxy.dev/apoxy/internal/apiserver"
	"apoxy.dev/apoxy/internal/claims"
	"apoxy.dev/apoxy/internal/controller"
	"apoxy.dev/apoxy/internal/proxy"
	"apoxy.dev/apoxy/internal/proxy/upstream"
	"apoxy.dev/apoxy/internal/translate"
)

// Options configure the platform.
type Options struct {
	API apiserver.Options
	// BindAddress is where Gateways without spec.addresses listen ("" = all interfaces).
	BindAddress string
	// StatusAddresses are reported for such Gateways (default: the bind address, or every
	// address of this machine when binding all interfaces).
	StatusAddresses []string
	// AddressPool gives each Gateway without spec.addresses its own address (see
	// translate.Options.AddressPool).
	AddressPool []string
	// AccessLog receives JSON access-log lines (nil: none).
	AccessLog io.Writer
	Upstream  upstream.Options
	Logger    *slog.Logger
	// OnProjectsChanged runs after a project starts or stops (e.g. to rewrite kubeconfigs).
	OnProjectsChanged func()
	// BackendNetworks are the internal ranges every project's Backends may reach (apoxy dev:
	// upstream.AllInternal; apoxy server: none unless --backend-networks says so). A
	// Project's spec.backendNetworks adds to them for that project.
	BackendNetworks []netip.Prefix
	// Reserved are the server's own sockets besides the API (the admin listener...), which
	// no Backend may reach. The API's own address is added at start.
	Reserved []upstream.Reserved
	// Requests is how the data plane cleans inbound requests (paths, trusted proxies,
	// underscore headers).
	Requests proxy.RequestPolicy
	// DrainAccept: see proxy.Options.DrainAccept.
	DrainAccept bool
	// MaxConnections and MaxConnsPerListener: see proxy.Options (0: the defaults).
	MaxConnections, MaxConnsPerListener int
}

// Platform is the running product.
type Platform struct {
	API   *apiserver.Server
	Proxy *proxy.Server
	// Claims decides which project a shared socket and hostname serve.
	Claims *claims.Registry
	// Destinations decides which addresses Backends may reach.
	Destinations *upstream.Destinations

	opts   Options
	log    *slog.Logger
	ctx    context.Context
	mu     sync.Mutex
	ctrls  map[string]*running
	closed bool
}

type running struct {
	ctrl   *controller.Controller
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs everything; ctx cancellation (or Close) stops it.
func Start(ctx context.Context, opts Options) (*Platform, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if len(opts.StatusAddresses) == 0 {
		opts.StatusAddresses = statusAddresses(opts.BindAddress)
	}
	if opts.Upstream.Logger == nil {
		opts.Upstream.Logger = opts.Logger
	}
	p := &Platform{opts: opts, log: opts.Logger, ctx: ctx, ctrls: map[string]*running{}}
	claimsFile := ""
	if opts.API.DataDir != "" {
		claimsFile = filepath.Join(opts.API.DataDir, "claims.json")
	}
	reg, err := claims.New(claims.Options{File: claimsFile, Logger: opts.Logger, Notify: func(project string) { go p.kick(project) }})
	if err != nil {
		return nil, err
	}
	p.Claims = reg
	p.Destinations = upstream.NewDestinations(opts.BackendNetworks, opts.Reserved)
	opts.Upstream.Destinations = p.Destinations
	p.Proxy = proxy.New(proxy.Options{Logger: opts.Logger, AccessLog: opts.AccessLog, Upstream: opts.Upstream, Requests: opts.Requests, DrainAccept: opts.DrainAccept,
		MaxConnections: opts.MaxConnections, MaxConnectionsPerListener: opts.MaxConnsPerListener})
	apiOpts := opts.API
	apiOpts.Logger = opts.Logger
	apiOpts.OnProjectStopping = p.stopController
	userHook := opts.OnProjectsChanged
	apiOpts.OnProjectsChanged = func() {
		p.syncControllers()
		if userHook != nil {
			userHook()
		}
	}
	api, err := apiserver.New(apiOpts)
	if err != nil {
		return nil, err
	}
	p.API = api
	if err := api.Start(ctx); err != nil {
		p.Proxy.Close()
		return nil, err
	}
	if ap, err := netip.ParseAddrPort(strings.TrimPrefix(api.URL(), "https://")); err == nil {
		p.Destinations.Reserve(upstream.Reserved{Addr: ap, Name: "the API server"})
	}
	p.Claims.Expect(api.ProjectsCreated())
	p.syncControllers()
	return p, nil
}

// statusAddresses are the addresses Gateways without their own report: the bind address, or
// for all interfaces every address of this machine clients can use (link-local ones left out),
// loopback first.
func statusAddresses(bind string) []string {
	if bind != "" && bind != "0.0.0.0" && bind != "::" {
		return []string{bind}
	}
	var loopback, other []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr().Unmap()
		switch {
		case ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified():
		case ip.IsLoopback():
			loopback = append(loopback, ip.String())
		default:
			other = append(other, ip.String())
		}
	}
	out := append(loopback, other...)
	if len(out) == 0 {
		out = []string{"127.0.0.1"}
	}
	return out
}

// syncControllers runs one controller per served project.
func (p *Platform) syncControllers() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	served := map[string]bool{}
	for _, name := range p.API.ProjectNames() {
		served[name] = true
		p.applyProjectSpec(name)
		if _, ok := p.ctrls[name]; ok {
			continue
		}
		c, err := controller.New(controller.Options{
			Project: name,
			Config:  p.API.ProjectConfig(name),
			Data:    p.Proxy,
			Translate: translate.Options{
				BindAddress:     p.opts.BindAddress,
				StatusAddresses: p.opts.StatusAddresses,
				AddressPool:     p.opts.AddressPool,
			},
			Logger: p.log,
			Claims: p.Claims,
		})
		if err != nil {
			p.log.Error("start controller", "project", name, "err", err)
			continue
		}
		ctx, cancel := context.WithCancel(p.ctx)
		r := &running{ctrl: c, cancel: cancel, done: make(chan struct{})}
		p.ctrls[name] = r
		go func() { defer close(r.done); c.Run(ctx) }()
	}
	for name, r := range p.ctrls {
		if !served[name] {
			r.cancel()
			delete(p.ctrls, name)
			go func() {
				<-r.done
				p.Claims.Release(name)
				if err := p.Proxy.Remove(name); err != nil {
					p.log.Error("remove project from data plane", "project", name, "err", err)
				}
			}()
		}
	}
}

// stopController stops a project's controller and waits (up to 5 s) until it has, before
// the project's API goes away: its watches end quietly instead of failing.
func (p *Platform) stopController(name string) {
	p.mu.Lock()
	r := p.ctrls[name]
	delete(p.ctrls, name)
	p.mu.Unlock()
	if r == nil {
		return
	}
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
	}
	p.Claims.Release(name)
	if err := p.Proxy.Remove(name); err != nil {
		p.log.Error("remove project from data plane", "project", name, "err", err)
	}
}

// applyProjectSpec hands the admin's per-project settings to the claims registry (assigned
// hostnames) and the destination policy (backend networks).
func (p *Platform) applyProjectSpec(name string) {
	spec, ok := p.API.ProjectSpec(name)
	if !ok {
		return
	}
	p.Claims.Assign(name, spec.Hostnames)
	var nets []netip.Prefix
	for _, c := range spec.BackendNetworks {
		if pfx, err := netip.ParsePrefix(c); err == nil {
			nets = append(nets, pfx.Masked())
		}
	}
	p.Destinations.SetProject(name, nets)
}

// kick asks a project's controller to reconcile (its claims decision changed).
func (p *Platform) kick(project string) {
	p.mu.Lock()
	r := p.ctrls[project]
	p.mu.Unlock()
	if r != nil {
		r.ctrl.Kick()
	}
}

// Ready reports whether the API serves and every project's configuration reached the data
// plane at least once.
func (p *Platform) Ready() error {
	if !p.API.Ready() {
		return errors.New("API server not ready")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, r := range p.ctrls {
		if v, _ := r.ctrl.Applied(); v == "" {
			return fmt.Errorf("project %s: configuration not applied yet", name)
		}
	}
	return nil
}

// Close stops controllers, drains the data plane and stops the API server.
func (p *Platform) Close() {
	p.mu.Lock()
	p.closed = true
	ctrls := p.ctrls
	p.ctrls = map[string]*running{}
	p.mu.Unlock()
	for _, r := range ctrls {
		r.cancel()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
		}
	}
	p.Proxy.Close()
	p.API.Shutdown()
}
