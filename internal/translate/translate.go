package translate

import (
	"time"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/resource"
	"apoxy.dev/apoxy/internal/status"
)

// Options tune translation. The zero value is usable.
type Options struct {
	// ControllerName is the GatewayClass controllerName we reconcile (default
	// gateway.apoxy.dev/gatewayclass-controller).
	ControllerName string
	// Now stamps condition transition times.
	Now time.Time
	// BindAddress is where Gateways without spec.addresses listen ("" = all interfaces).
	BindAddress string
	// StatusAddresses are reported in status.addresses for Gateways without spec.addresses.
	StatusAddresses []string
	// AddressPool, when set, gives every Gateway without spec.addresses its own address: the
	// one its status already reports if still free, else the first free one. A Gateway the pool
	// cannot serve gets Programmed=False (AddressNotAssigned).
	AddressPool []string
	// DefaultRequestTimeout applies when a rule sets none (default 100 s).
	DefaultRequestTimeout time.Duration
	// GlobalRateLimitStore says the data plane has a store for Global rate-limit rules (apoxy
	// --redis); without it (and without a Proxy naming one) such rules make their policy
	// Invalid.
	GlobalRateLimitStore bool
	// SessionSecret is the server's secret the OIDC session-cookie keys of every project are
	// derived from (sessionKeys); without it an oidc block cannot seal sessions and fails
	// closed.
	SessionSecret []byte
	// Memory carries what translations of the same objects remember from one another (the
	// last version of each auth Secret that parsed); nil: nothing is remembered.
	Memory *Memory
	// Scope prefixes backend and certificate names ("project/ns/name") so snapshots of several
	// projects can be served by one data plane without name clashes.
	Scope string
	// ValidateCollectorConfig checks a Proxy's OpenTelemetry Collector configuration (the
	// data plane's collector knows what it accepts); nil accepts any.
	ValidateCollectorConfig func(yaml []byte) error
}

const (
	defaultControllerName = "gateway.apoxy.dev/gatewayclass-controller"
	defaultRequestTimeout = 100 * time.Second
)

// Translate computes the snapshot and status for a set. The set is not modified.
func Translate(set *resource.Set, opts Options) (*ir.Snapshot, *status.Report) {
	if opts.ControllerName == "" {
		opts.ControllerName = defaultControllerName
	}
	if opts.DefaultRequestTimeout == 0 {
		opts.DefaultRequestTimeout = defaultRequestTimeout
	}
	t := &translator{set: set, opts: opts, report: status.NewReport(), snap: &ir.Snapshot{}}
	t.index()
	t.translateTelemetry()
	t.translateGatewayClasses()
	t.translateGateways()
	t.indexTrafficPolicies()
	t.indexAuthPolicies()
	t.translateHTTPRoutes()
	t.translateGRPCRoutes()
	t.translateTCPRoutes()
	t.translateUDPRoutes()
	t.translateTLSRoutes()
	t.reportTrafficPolicies()
	t.reportAuthPolicies()
	t.finishTelemetry()
	t.opts.Memory.forgetUnused()
	t.finish()
	return t.snap, t.report
}
