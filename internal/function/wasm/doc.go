// Package wasm runs WebAssembly edge functions on wazero, speaking the http-wasm handler ABI
// (https://http-wasm.io/http-handler-abi/), implemented here: raw Wasm modules and Go
// compiled to wasip1 (with pkg/edgefunc) are the same kind of function to the gateway.
//
// A revision is compiled once by Load and served from a pool of instances, each running one
// invocation at a time; per-invocation state reaches the host functions through the call's
// context, so one compiled module serves every instance. An invocation is preempted at
// Limits.Timeout (the instance is closed and replaced lazily), an instance's linear memory is
// capped at Limits.MemoryBytes, and a trap ends the invocation with an error and discards the
// instance: a guest can fail its own request, never the gateway.
//
// # Guest exports
//
//	handle_request() -> i64
//	  Low 32 bits: 1 = continue to the next handler (a filter passes the request on, with
//	  its edits), 0 = the guest wrote the response. High 32 bits: a request context handed
//	  back to handle_response.
//	handle_response(req_ctx i32, is_error i32)   (optional)
//	  Called after the upstream answered (is_error 0) or failed (is_error 1), to read and edit
//	  the upstream's status and headers. The response body is not visible.
//	_initialize()   (optional; run once per instance, as Go's -buildmode=c-shared emits it)
//
// A backend-mode function must answer: handle_request returning "continue" there yields a
// 502 Result (and a log line), since there is no next handler to continue to.
//
// # Imports: module "http_handler"
//
// The functions of the http-wasm handler ABI: enable_features (buffer_request = 1 and
// buffer_response = 2 are granted, trailers = 4 is not), get_config, log, log_enabled,
// get_method, set_method, get_uri, set_uri, get_protocol_version, get_header_names,
// get_header_values, set_header_value, add_header_value, remove_header (header kinds 0
// request, 1 response, 2 request trailers, 3 response trailers; trailers read as empty and
// writes to them are dropped), read_body, write_body (body kinds 0 request, 1 response),
// get_status_code, set_status_code and get_source_addr.
//
// Buffers follow the ABI: a function that returns bytes takes (buf, buf_limit), writes them
// to guest memory only when they fit, and always returns their length, so a guest whose
// buffer was too small grows it and calls again. Lists are NUL-terminated strings, and the
// i64 results of get_header_names and get_header_values carry the count in the high 32 bits
// and the length in the low 32; read_body's i64 carries EOF (1) in the high 32 bits.
//
// # Imports: module "apoxy"
//
// The gateway's own capabilities. Every call returns a negative code when it fails: -1 the
// capability was not given to this revision (Host.Fetch or Host.KV is nil), -2 not found,
// -3 the operation failed, -4 a limit was hit (Limits.MaxFetches, MaxFetchBytes), -5 the
// guest's arguments are malformed.
//
//	fetch(method, method_len, url, url_len, headers, headers_len, body, body_len i32) -> i32
//	  A blocking outbound request through Host.Fetch. headers is a list of NUL-terminated
//	  strings alternating name and value ("name\0value\0..."). The whole response is read
//	  (at most the invocation's remaining MaxFetchBytes) and a handle > 0 is returned.
//	fetch_status(handle i32) -> i32
//	fetch_headers(handle, buf, buf_limit i32) -> i64
//	  The response headers in the same name/value list encoding; count of pairs in the high
//	  32 bits, length in the low 32.
//	fetch_read_body(handle, buf, buf_limit i32) -> i64
//	  Reads the next bytes of the response body, EOF in the high 32 bits, like read_body.
//	fetch_close(handle i32)
//	  Frees the response (every handle is freed when the invocation ends anyway).
//	kv_get(key, key_len, buf, buf_limit i32) -> i64
//	  The value's length (written when it fits, as above), or a negative code.
//	kv_put(key, key_len, value, value_len i32, ttl_ms i64) -> i32
//	kv_delete(key, key_len i32) -> i32
//
// Environment variables (Host.Env) are the instance's WASI environ, read by os.Getenv in a
// Go guest; standard output and error go to Host.Log.
package wasm
