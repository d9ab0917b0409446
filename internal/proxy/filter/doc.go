// Package filter compiles what a route asks to be done to its requests into an ordered chain
// of stages, and runs the chain on each request.
//
// A Stage sees one Exchange (the request, the response writer and the route) and may change
// the request, register a response hook or answer the request itself, which ends the chain.
// Stages run in phase order (see Phase and docs/architecture.md); within the route-filter
// phase they run in the order the route lists its filters, as the IR promises. Response
// hooks run once, in registration order, on the response head just before it is written, on
// every path the proxy answers by: forwarded responses, upgrades (WebSocket), redirects,
// direct responses and the gateway's own errors.
//
// One file per stage type. Adding a filter is its own file plus one line in registry.go.
package filter
