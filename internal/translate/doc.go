// Package translate turns a resource.Set (the API objects of one project) into an
// ir.Snapshot (what the data plane serves) and a status.Report (conditions for every object it
// read). It is pure: no I/O, no clock reads (time comes in Options), deterministic output for
// the same input, so its golden tests are stable.
//
// One file per kind: gateway.go (and gateway classes), listenerset.go, httproute.go,
// grpcroute.go, tcproute.go (with what TCP and UDP routes share), udproute.go, tlsroute.go,
// backend.go, backendtlspolicy.go; refs.go holds ReferenceGrant checks and hostname
// intersection (the hostname rules themselves are internal/hostname); translator.go drives
// them in order; features.go lists what the GatewayClass claims.
package translate
