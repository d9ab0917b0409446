// Package proxy is the HTTP data plane. Server owns the listening sockets and, per socket, an
// immutable compiled handler graph (route table, route handlers, certificates) that Apply
// builds beside the current one and swaps in atomically; sockets, upstream clusters (with their
// connection pools, addresses and health) survive the swap. A snapshot that does not compile or
// whose sockets cannot be bound is rejected and the previous graph keeps serving.
package proxy
