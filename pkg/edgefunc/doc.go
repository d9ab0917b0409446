// Package edgefunc writes an Apoxy edge function in Go: a program built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o fn.wasm .
//
// registers its handler in init, and the gateway runs it (internal/function/wasm) through
// the http-wasm handler ABI:
//
//	package main
//
//	import "apoxy.dev/apoxy/pkg/edgefunc"
//
//	func main() {}
//
//	func init() {
//		edgefunc.Handle(func(w edgefunc.ResponseWriter, r *edgefunc.Request) bool {
//			if r.Header("Authorization") == "" {
//				w.WriteHeader(401)
//				w.Write([]byte("unauthorized\n"))
//				return false // answered
//			}
//			r.SetHeader("X-User", "someone")
//			return true // pass the request on, as edited
//		})
//	}
//
// Returning true passes the request on (a filter) and false sends what the handler wrote. A
// backend function always returns false. Outbound requests go through Fetch and the
// function's key-value store through KVGet, KVPut and KVDelete, when the revision was given
// those capabilities; os.Getenv reads the revision's environment. Importing
// pkg/edgefunc/onresponse lets a filter edit the upstream's response head as well.
//
// Everything but this documentation is built only for wasip1.
package edgefunc
