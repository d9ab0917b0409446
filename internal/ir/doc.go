// Package ir is the data plane's input: a versioned, immutable Snapshot of everything one
// proxy serves (listeners, virtual hosts, routes, backends, certificates), produced by the pure
// translator (internal/translate) from API objects and compiled by internal/proxy.
//
// It imports only the standard library, never API types: the data plane can run in another
// process (apoxy gateway run) and be tested without the API server. Objects refer to each other
// by stable names ("ns/name"), so YAML dumps are readable and diffs stay local. Every object
// carries an Origin naming the API object it came from, for logs, metrics and status.
package ir
