// Package onresponse, imported for its effect in a wasip1 edge function, exports
// handle_response so that the handler registered with edgefunc.HandleResponse sees the
// upstream's response head (status and headers).
package onresponse
