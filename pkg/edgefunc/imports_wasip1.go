//go:build wasip1

package edgefunc

// The http-wasm handler ABI (https://http-wasm.io/http-handler-abi/).

//go:wasmimport http_handler enable_features
func enableFeatures(features uint64) uint64

//go:wasmimport http_handler get_config
func getConfig(buf, limit uint32) uint32

//go:wasmimport http_handler log
func logMessage(level int32, msg, msgLen uint32)

//go:wasmimport http_handler get_method
func getMethod(buf, limit uint32) uint32

//go:wasmimport http_handler set_method
func setMethod(ptr, n uint32)

//go:wasmimport http_handler get_uri
func getURI(buf, limit uint32) uint32

//go:wasmimport http_handler set_uri
func setURI(ptr, n uint32)

//go:wasmimport http_handler get_protocol_version
func getProtocolVersion(buf, limit uint32) uint32

//go:wasmimport http_handler get_source_addr
func getSourceAddr(buf, limit uint32) uint32

//go:wasmimport http_handler get_header_names
func getHeaderNames(kind, buf, limit uint32) uint64

//go:wasmimport http_handler get_header_values
func getHeaderValues(kind, name, nameLen, buf, limit uint32) uint64

//go:wasmimport http_handler set_header_value
func setHeaderValue(kind, name, nameLen, value, valueLen uint32)

//go:wasmimport http_handler add_header_value
func addHeaderValue(kind, name, nameLen, value, valueLen uint32)

//go:wasmimport http_handler remove_header
func removeHeader(kind, name, nameLen uint32)

//go:wasmimport http_handler read_body
func readBody(kind, buf, limit uint32) uint64

//go:wasmimport http_handler write_body
func writeBody(kind, ptr, n uint32)

//go:wasmimport http_handler get_status_code
func getStatusCode() uint32

//go:wasmimport http_handler set_status_code
func setStatusCode(code uint32)

// The gateway's own module (internal/function/wasm documents it).

//go:wasmimport apoxy fetch
func fetch(method, methodLen, url, urlLen, headers, headersLen, body, bodyLen uint32) int32

//go:wasmimport apoxy fetch_status
func fetchStatus(handle int32) int32

//go:wasmimport apoxy fetch_headers
func fetchHeaders(handle int32, buf, limit uint32) int64

//go:wasmimport apoxy fetch_read_body
func fetchReadBody(handle int32, buf, limit uint32) int64

//go:wasmimport apoxy fetch_close
func fetchClose(handle int32)

//go:wasmimport apoxy kv_get
func kvGet(key, keyLen, buf, limit uint32) int64

//go:wasmimport apoxy kv_put
func kvPut(key, keyLen, value, valueLen uint32, ttlMillis int64) int32

//go:wasmimport apoxy kv_delete
func kvDelete(key, keyLen uint32) int32
