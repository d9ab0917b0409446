//go:build wasip1

// Command respguest is a filter that also edits the upstream's response head.
package main

import (
	"strconv"

	"apoxy.dev/apoxy/pkg/edgefunc"
	_ "apoxy.dev/apoxy/pkg/edgefunc/onresponse"
)

func main() {}

func init() {
	edgefunc.Handle(func(w edgefunc.ResponseWriter, r *edgefunc.Request) bool {
		r.SetHeader("X-Edge", "request")
		return true
	})
	edgefunc.HandleResponse(func(resp *edgefunc.Response) {
		if resp.Failed {
			return
		}
		resp.SetHeader("X-Upstream-Status", strconv.Itoa(resp.Status()))
		resp.DelHeader("Server")
		if resp.Status() == 404 {
			resp.SetStatus(410)
		}
	})
}
