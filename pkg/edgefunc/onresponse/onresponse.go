//go:build wasip1

package onresponse

import "apoxy.dev/apoxy/pkg/edgefunc"

//go:wasmexport handle_response
func handleResponse(reqCtx uint32, isError uint32) {
	edgefunc.RunResponseHandler(reqCtx, isError)
}
