//go:build wasip1

// Command guest is the test function of internal/function/wasm: what it does is chosen by
// the X-Mode request header, or else by its config.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"apoxy.dev/apoxy/pkg/edgefunc"
)

func main() {}

var (
	defaultMode string
	hoard       [][]byte
)

func init() {
	defaultMode = string(edgefunc.Config())
	if defaultMode == "features" {
		// Enabled once, in init, as http-wasm guests do: it lasts for the instance.
		if got := edgefunc.EnableFeatures(2 | 4); got != 2 {
			panic(fmt.Sprintf("features enabled: %d, want buffer_response only", got))
		}
	}
	edgefunc.Handle(handle)
}

func handle(w edgefunc.ResponseWriter, r *edgefunc.Request) bool {
	mode := r.Header("X-Mode")
	if mode == "" {
		mode = defaultMode
	}
	switch mode {
	case "pass", "features":
		r.SetHeader("X-Edge", "seen")
		return true
	case "rewrite":
		r.SetMethod("POST")
		r.SetURI("/rewritten?from=" + strings.TrimPrefix(r.URI(), "/"))
		r.AddHeader("X-Multi", "two")
		r.DelHeader("X-Remove")
		r.SetBody([]byte("new body"))
		return true
	case "peek":
		r.SetHeader("X-Body-Len", fmt.Sprint(len(r.Body())))
		return true
	case "auth":
		if r.Header("Authorization") == "" {
			w.SetHeader("WWW-Authenticate", `Bearer realm="edge"`)
			w.SetHeader("Content-Type", "text/plain")
			w.WriteHeader(401)
			w.Write([]byte("unauthorized\n"))
			return false
		}
		r.SetHeader("X-Auth-Checked", "true")
		return true
	case "echo":
		w.SetHeader("Content-Type", "text/plain")
		w.WriteHeader(200)
		fmt.Fprintf(w, "%s %s %s from %s\n", r.Method(), r.URI(), r.Proto(), r.RemoteAddr())
		fmt.Fprintf(w, "hello %s, %s\n", r.Header("X-Name"), os.Getenv("GREETING"))
		fmt.Fprintf(w, "names=%s\n", strings.Join(r.HeaderNames(), ","))
		fmt.Fprintf(w, "body=%s\n", r.Body())
		return false
	case "fetch":
		resp, err := edgefunc.Fetch("POST", r.Header("X-Target"), edgefunc.Header{"X-From": {"edge"}}, []byte("ping"))
		if err != nil {
			w.WriteHeader(502)
			w.Write([]byte(err.Error()))
			return false
		}
		w.SetHeader("X-Upstream", resp.Header.Get("X-Up"))
		w.WriteHeader(resp.Status)
		w.Write(resp.Body)
		return false
	case "fetch-twice":
		for i := range 2 {
			if _, err := edgefunc.Fetch("GET", r.Header("X-Target"), nil, nil); err != nil {
				w.WriteHeader(502)
				fmt.Fprintf(w, "fetch %d: %v", i, err)
				return false
			}
		}
		w.Write([]byte("fetched twice"))
		return false
	case "kv":
		key, value := r.Header("X-Key"), r.Header("X-Value")
		if err := edgefunc.KVPut(key, []byte(value), time.Minute); err != nil {
			w.WriteHeader(502)
			w.Write([]byte("put: " + err.Error()))
			return false
		}
		got, ok, err := edgefunc.KVGet(key)
		if err != nil || !ok {
			w.WriteHeader(502)
			fmt.Fprintf(w, "get: %v %v", ok, err)
			return false
		}
		if err := edgefunc.KVDelete(key); err != nil {
			w.WriteHeader(502)
			w.Write([]byte("delete: " + err.Error()))
			return false
		}
		_, ok, err = edgefunc.KVGet(key)
		w.SetHeader("X-After-Delete", fmt.Sprint(ok, err))
		w.Write(got)
		return false
	case "log":
		edgefunc.Log(edgefunc.LevelWarn, "from the guest")
		fmt.Println("to stdout")
		return true
	case "loop":
		for {
		}
	case "hog":
		for {
			hoard = append(hoard, make([]byte, 1<<20))
		}
	case "trap":
		var m map[string]int
		m["x"] = 1 // a nil map write: the guest panics and exits
		return true
	}
	w.WriteHeader(500)
	w.Write([]byte("unknown mode " + mode))
	return false
}
