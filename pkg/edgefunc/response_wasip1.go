//go:build wasip1

package edgefunc

// Response is the upstream's response head, seen by a ResponseHandler.
type Response struct {
	// Failed: there is no response (the upstream failed); the setters do nothing useful.
	Failed bool
}

// Status is the upstream's status code.
func (*Response) Status() int { return int(getStatusCode()) }

// SetStatus changes the status code sent to the client.
func (*Response) SetStatus(code int) { setStatusCode(uint32(code)) }

// Header is the first value of the response header name.
func (*Response) Header(name string) string {
	if v := headerValues(kindResponse, name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// SetHeader replaces the values of the response header name.
func (*Response) SetHeader(name, value string) { setHeader(kindResponse, name, value) }

// AddHeader adds a value to the response header name.
func (*Response) AddHeader(name, value string) { addHeader(kindResponse, name, value) }

// DelHeader removes the response header name.
func (*Response) DelHeader(name string) { delHeader(kindResponse, name) }

// ResponseHandler sees the upstream's response of a request its filter passed.
type ResponseHandler func(r *Response)

var responseHandler ResponseHandler

// HandleResponse makes h see the upstream response of every request the handler passes.
// It takes effect only in a program importing pkg/edgefunc/onresponse, which exports
// handle_response: the gateway holds an instance through the upstream's round trip only for
// functions that export it.
func HandleResponse(h ResponseHandler) { responseHandler = h }

// RunResponseHandler runs the ResponseHandler; pkg/edgefunc/onresponse calls it.
func RunResponseHandler(reqCtx uint32, isError uint32) {
	if responseHandler != nil {
		responseHandler(&Response{Failed: isError != 0})
	}
}
