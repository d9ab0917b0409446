// Package proxy is the data plane: HTTP (HTTP/1.1 by internal/proxy/h1, HTTP/2 by net/http,
// HTTP/3 by quic-go), TLS routing by SNI (sni.go), TCP and UDP relays (l4.go, udp.go). Inbound
// requests are cleaned before routing (inbound.go: path normalisation, hop-by-hop and
// forwarding headers). Server owns the listening sockets and, per socket, an
// immutable compiled handler graph (route table, route handlers, certificates) that Apply
// builds beside the current one and swaps in atomically; sockets, upstream clusters (with their
// connection pools, addresses and health) survive the swap. A snapshot that does not compile or
// whose sockets cannot be bound is rejected and the previous graph keeps serving.
package proxy
