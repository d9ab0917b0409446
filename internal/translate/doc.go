// Package translate turns a resource.Set (the API objects of one project) into an
// ir.Snapshot (what the data plane serves) and a status.Report (conditions for every object it
// read). It is pure: no I/O, no clock reads (time comes in Options), deterministic output for
// the same input, so its golden tests are stable.
//
// One file per kind: gatewayclass.go, gateway.go, httproute.go, backend.go; refs.go holds
// ReferenceGrant checks and hostname rules shared by all.
package translate
