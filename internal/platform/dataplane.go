package platform

import (
	"context"
	"errors"

	"apoxy.dev/apoxy/internal/component"
	"apoxy.dev/apoxy/internal/proxy"
)

// dataPlane is the component that runs the data plane (proxy.Server). It binds its sockets as
// the controllers hand it snapshots, so starting it binds nothing; whether every project's
// configuration reached it is the controllers' readiness, not its own.
type dataPlane struct {
	srv     *proxy.Server
	stopper component.Stopper
}

// Name is "data-plane".
func (d *dataPlane) Name() string { return "data-plane" }

// Start readies the data plane to take snapshots; it cannot fail.
func (d *dataPlane) Start(context.Context) error { return nil }

// Ready is nil until Stop.
func (d *dataPlane) Ready() error {
	if d.stopper.Stopping() {
		return errors.New("draining")
	}
	return nil
}

// Stop drains every socket (in-flight requests finish, up to the drain timeout; with
// DrainAccept, new connections are still served with Connection: close meanwhile), then stops
// the upstream clusters.
func (d *dataPlane) Stop(ctx context.Context) error {
	return d.stopper.Stop(ctx, func() error {
		d.srv.Close()
		return nil
	})
}
