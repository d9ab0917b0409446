//go:build !wasip1

package edgefunc

import "embed"

// Source is this package's own Go source (and that of its sub-package onresponse), as the
// module apoxy.dev/apoxy lays it out: pkg/edgefunc/*.go and pkg/edgefunc/onresponse/*.go. A
// deployed server has no copy of this repository, so when it compiles a Go edge function
// (internal/function/build.GoWasm) it writes Source into the build as the module the
// function's import of apoxy.dev/apoxy/pkg/edgefunc resolves to. The guest is then always
// built against the SDK of the server that runs it.
//
//go:embed *.go onresponse/*.go
var Source embed.FS
