package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"apoxy.dev/apoxy/internal/apiserver"
	"apoxy.dev/apoxy/internal/claims"
	"apoxy.dev/apoxy/internal/component"
	"apoxy.dev/apoxy/internal/controller"
	"apoxy.dev/apoxy/internal/domain"
	"apoxy.dev/apoxy/internal/function/builder"
	"apoxy.dev/apoxy/internal/function/loader"
	"apoxy.dev/apoxy/internal/proxy"
	"apoxy.dev/apoxy/internal/proxy/upstream"
	"apoxy.dev/apoxy/internal/translate"
	"apoxy.dev/apoxy/internal/tunnel"
	"apoxy.dev/apoxy/internal/tunnel/node"
)

// controllerStopWait bounds how long stopping waits for a project's controller to end (its
// watches and a reconcile in progress) before going on without it.
const controllerStopWait = 5 * time.Second

// controllers is the component that runs one controller per project the API server serves,
// starting and stopping them as projects come and go. It is ready once every project's
// controller has synced and applied its first snapshot to the data plane.
type controllers struct {
	api       *apiserver.Server
	data      *proxy.Server
	claims    *claims.Registry
	dest      *upstream.Destinations
	translate translate.Options
	log       *slog.Logger
	// dataDir holds the projects' built edge functions; builds bound concurrent builds
	// across projects (one at a time: a build takes a core).
	dataDir  string
	builds   chan struct{}
	compiler *builder.Compiler
	// domains builds each project's DNS zones (domain.Reconciler) from these options (Project
	// set per controller) and offers them to the process's DNS server.
	domains domain.Options
	// nodes runs each project's TunnelNodes (node.Reconciler) from these options (Project
	// set per controller).
	nodes node.Options

	mu sync.Mutex
	// ctx is the parent of every controller's context, cancelled by Stop.
	ctx     context.Context
	cancel  context.CancelFunc
	running map[string]*running
	started bool
	closed  bool
	stopper component.Stopper
}

// running is one project's controller.
type running struct {
	ctrl   *controller.Controller
	cancel context.CancelFunc
	done   chan struct{}
}

// Name is "controllers".
func (c *controllers) Name() string { return "controllers" }

// Start dates the claims of the projects that exist (see claims.Registry.Expect) and runs a
// controller for each. Projects started or stopped later are followed through sync and
// stopProject, which the API server calls.
func (c *controllers) Start(ctx context.Context) error {
	c.claims.Expect(c.api.ProjectsCreated())
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errors.New("stopped")
	}
	// Controllers run until Stop, not until the start context ends.
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	c.running = map[string]*running{}
	c.started = true
	c.mu.Unlock()
	c.sync()
	return nil
}

// sync runs one controller per served project and stops those of projects no longer served.
// Before Start and after Stop it does nothing.
func (c *controllers) sync() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started || c.closed {
		return
	}
	served := map[string]bool{}
	for _, name := range c.api.ProjectNames() {
		served[name] = true
		c.applyProjectSpec(name)
		if _, ok := c.running[name]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(c.ctx)
		ctrl, err := controller.New(controller.Options{
			Project:   name,
			Config:    c.api.ProjectConfig(name),
			Data:      c.data,
			Translate: c.translate,
			Logger:    c.log,
			Claims:    c.claims,
			Reconcilers: []controller.Reconciler{builder.New(ctx, builder.Options{
				Project: name, Store: loader.StoreAt(c.dataDir, name), Slots: c.builds, Logger: c.log, Compile: c.compiler.Compile,
			}), c.domainReconciler(name), c.nodeReconciler(name)},
		})
		if err != nil {
			cancel()
			c.log.Error("start controller", "project", name, "err", err)
			continue
		}
		r := &running{ctrl: ctrl, cancel: cancel, done: make(chan struct{})}
		c.running[name] = r
		go func() { defer close(r.done); ctrl.Run(ctx) }()
	}
	for name, r := range c.running {
		if !served[name] {
			r.cancel()
			delete(c.running, name)
			go func() {
				<-r.done
				c.release(name)
			}()
		}
	}
}

// stopProject stops a project's controller and waits (up to 5 s) until it has, before the
// project's API goes away: its watches end quietly instead of failing. Then its claims and
// its snapshot in the data plane are released.
func (c *controllers) stopProject(name string) {
	c.mu.Lock()
	r := c.running[name]
	delete(c.running, name)
	c.mu.Unlock()
	if r == nil {
		return
	}
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(controllerStopWait):
	}
	c.release(name)
}

// release drops a stopped project's claims and its snapshot from the data plane.
func (c *controllers) release(name string) {
	c.claims.Release(name)
	c.domains.Registry.Release(name)
	if c.nodes.Registry != nil {
		c.nodes.Registry.Release(name)
	}
	if c.nodes.Endpoint != nil {
		c.nodes.Endpoint.Release(name)
	}
	if c.domains.Certs != nil {
		c.domains.Certs.Release(name)
	}
	if err := c.data.Remove(name); err != nil {
		c.log.Error("remove project from data plane", "project", name, "err", err)
	}
}

// applyProjectSpec hands the admin's per-project settings to the claims registry (assigned
// hostnames) and the destination policy (backend networks).
func (c *controllers) applyProjectSpec(name string) {
	spec, ok := c.api.ProjectSpec(name)
	if !ok {
		return
	}
	c.claims.Assign(name, spec.Hostnames)
	var nets []netip.Prefix
	for _, s := range spec.BackendNetworks {
		if pfx, err := netip.ParsePrefix(s); err == nil {
			nets = append(nets, pfx.Masked())
		}
	}
	if c.nodes.Endpoint != nil {
		// A project's own tunnel overlay is its to reach (another's stays refused).
		nets = append(nets, tunnel.ProjectPrefix(name))
	}
	c.dest.SetProject(name, nets)
}

// objectCreated tells a project's controller that an object of gr now exists, so it watches
// that kind (the API server calls it on every create).
func (c *controllers) objectCreated(project string, gr schema.GroupResource) {
	c.mu.Lock()
	r := c.running[project]
	c.mu.Unlock()
	if r != nil {
		r.ctrl.Want(gr)
	}
}

// kick asks a project's controller to reconcile (its claims decision changed).
func (c *controllers) kick(project string) {
	c.mu.Lock()
	r := c.running[project]
	c.mu.Unlock()
	if r != nil {
		r.ctrl.Kick()
	}
}

// Ready is nil once every project's controller has synced and the data plane accepted its
// snapshot at least once; else it names the first project (by name) still waiting.
func (c *controllers) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return errors.New("stopped")
	case !c.started:
		return errors.New("not started")
	}
	names := make([]string, 0, len(c.running))
	for name := range c.running {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if v, _ := c.running[name].ctrl.Applied(); v == "" {
			return fmt.Errorf("project %s: configuration not applied yet", name)
		}
	}
	return nil
}

// Stop stops every controller (no more snapshots reach the data plane) and waits up to 5 s
// for them to end. Their snapshots stay in the data plane, which drains next.
func (c *controllers) Stop(ctx context.Context) error {
	return c.stopper.Stop(ctx, func() error {
		c.mu.Lock()
		c.closed = true
		rs := c.running
		c.running = map[string]*running{}
		cancel := c.cancel
		c.mu.Unlock()
		for _, r := range rs {
			r.cancel()
		}
		deadline := time.NewTimer(controllerStopWait)
		defer deadline.Stop()
		var stuck []string
		expired := false
		for name, r := range rs {
			if !expired {
				select {
				case <-r.done:
					continue
				case <-deadline.C:
					expired = true
				}
			}
			select {
			case <-r.done:
			default:
				stuck = append(stuck, name)
			}
		}
		if cancel != nil {
			cancel()
		}
		if len(stuck) > 0 {
			slices.Sort(stuck)
			return fmt.Errorf("controllers of %v did not stop within %s", stuck, controllerStopWait)
		}
		return nil
	})
}

// domainReconciler is a project's DomainZone and DomainRecord reconciler.
func (c *controllers) domainReconciler(project string) controller.Reconciler {
	o := c.domains
	o.Project, o.Logger = project, c.log
	return domain.NewReconciler(o)
}

// nodeReconciler is a project's TunnelNode reconciler.
func (c *controllers) nodeReconciler(project string) controller.Reconciler {
	o := c.nodes
	o.Project = project
	return node.NewReconciler(o)
}
