package platform

import (
	"context"
	"errors"
	"net/netip"
	"strings"

	"apoxy.dev/apoxy/internal/apiserver"
	"apoxy.dev/apoxy/internal/component"
	"apoxy.dev/apoxy/internal/proxy/upstream"
)

// apiServer is the component that runs the API server: storage, the HTTPS listener, the root
// server and every project's. Once bound, its address is kept from Backends.
type apiServer struct {
	srv  *apiserver.Server
	dest *upstream.Destinations

	// cancel ends the server's context (set by a successful Start).
	cancel  context.CancelFunc
	stopper component.Stopper
}

// Name is "api-server".
func (a *apiServer) Name() string { return "api-server" }

// Start returns once the API answers and serves every stored project. ctx ending during the
// start aborts it; afterwards the server runs until Stop.
func (a *apiServer) Start(ctx context.Context) error {
	life, cancel := context.WithCancel(context.WithoutCancel(ctx))
	abort := context.AfterFunc(ctx, cancel)
	err := a.srv.Start(life)
	if !abort() && err == nil {
		// ctx ended while the server started: it is shutting down already.
		a.srv.Shutdown()
		err = context.Cause(ctx)
	}
	if err != nil {
		cancel()
		return err
	}
	a.cancel = cancel
	if ap, err := netip.ParseAddrPort(strings.TrimPrefix(a.srv.URL(), "https://")); err == nil {
		a.dest.Reserve(upstream.Reserved{Addr: ap, Name: "the API server"})
	}
	return nil
}

// Ready is nil while the API serves every known project.
func (a *apiServer) Ready() error {
	if !a.srv.Ready() {
		return errors.New("not ready")
	}
	return nil
}

// Stop stops accepting API requests, lets in-flight ones finish (up to 5 s), stops every
// project's server and closes storage.
func (a *apiServer) Stop(ctx context.Context) error {
	return a.stopper.Stop(ctx, func() error {
		// The context first, as its ending is what the server's own loops (following
		// Projects) take for shutdown, then the shutdown itself.
		if a.cancel != nil {
			a.cancel()
		}
		a.srv.Shutdown()
		return nil
	})
}
