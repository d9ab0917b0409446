package accesslog

import "strings"

// opKind is what an operator reads from the Record.
type opKind uint8

const (
	opStartTime opKind = iota
	opHeader           // REQ, RESP, TRAILER, REQ_WITHOUT_QUERY, PATH: header or pseudo-header lookups
	opResponseCode
	opCodeDetails
	opFlags
	opFlagsLong
	opDuration
	opRequestDuration
	opResponseDuration
	opResponseTxDuration
	opBytesReceived
	opBytesSent
	opProtocol
	opUpstreamHost
	opUpstreamCluster
	opUpstreamTransportFailure
	opUpstreamAttempts
	opRemoteAddr
	opRemoteAddrNoPort
	opRemotePort
	opLocalAddr
	opLocalAddrNoPort
	opLocalPort
	opServerName
	opRouteName
	opTraceID
	opConnectionID
	opHostname
	opMetadata
	// Apoxy extensions.
	opDurationMS
	opUpstreamDurationMS
	opError
)

// argRule says whether an operator takes a (parenthesised) argument.
type argRule uint8

const (
	argNone argRule = iota
	argOptional
	argRequired
)

// opSpec describes an operator name.
type opSpec struct {
	kind opKind
	arg  argRule
	// trunc: the operator takes a ":Z" max length.
	trunc bool
	// headers: which header map an opHeader operator reads (hdrReq, hdrResp, hdrTrailer);
	// noQuery: REQ_WITHOUT_QUERY.
	headers headerSet
	noQuery bool
}

// headerSet is the header map a header operator reads.
type headerSet uint8

const (
	hdrReq headerSet = iota
	hdrResp
	hdrTrailer
	hdrPath // PATH(X:Y): the request path, original or current
)

// operatorNames lists the supported operators in the order the documentation gives them (error
// messages list them in this order).
var operatorNames = []string{
	"START_TIME", "REQ", "REQUEST_HEADER", "RESP", "RESPONSE_HEADER", "TRAILER", "RESPONSE_TRAILER",
	"REQ_WITHOUT_QUERY", "PATH", "RESPONSE_CODE", "RESPONSE_CODE_DETAILS", "RESPONSE_FLAGS",
	"RESPONSE_FLAGS_LONG", "DURATION", "REQUEST_DURATION", "RESPONSE_DURATION", "RESPONSE_TX_DURATION",
	"BYTES_RECEIVED", "BYTES_SENT", "PROTOCOL", "UPSTREAM_HOST", "UPSTREAM_CLUSTER",
	"UPSTREAM_TRANSPORT_FAILURE_REASON", "UPSTREAM_REQUEST_ATTEMPT_COUNT", "DOWNSTREAM_REMOTE_ADDRESS",
	"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", "DOWNSTREAM_REMOTE_PORT", "DOWNSTREAM_LOCAL_ADDRESS",
	"DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", "DOWNSTREAM_LOCAL_PORT", "REQUESTED_SERVER_NAME", "ROUTE_NAME",
	"TRACE_ID", "CONNECTION_ID", "HOSTNAME", "DYNAMIC_METADATA",
	"DURATION_MS", "UPSTREAM_DURATION_MS", "ERROR",
}

var operators = map[string]opSpec{
	"START_TIME":                             {kind: opStartTime, arg: argOptional},
	"REQ":                                    {kind: opHeader, arg: argRequired, trunc: true, headers: hdrReq},
	"REQUEST_HEADER":                         {kind: opHeader, arg: argRequired, trunc: true, headers: hdrReq},
	"RESP":                                   {kind: opHeader, arg: argRequired, trunc: true, headers: hdrResp},
	"RESPONSE_HEADER":                        {kind: opHeader, arg: argRequired, trunc: true, headers: hdrResp},
	"TRAILER":                                {kind: opHeader, arg: argRequired, trunc: true, headers: hdrTrailer},
	"RESPONSE_TRAILER":                       {kind: opHeader, arg: argRequired, trunc: true, headers: hdrTrailer},
	"REQ_WITHOUT_QUERY":                      {kind: opHeader, arg: argRequired, trunc: true, headers: hdrReq, noQuery: true},
	"PATH":                                   {kind: opHeader, arg: argOptional, trunc: true, headers: hdrPath},
	"RESPONSE_CODE":                          {kind: opResponseCode},
	"RESPONSE_CODE_DETAILS":                  {kind: opCodeDetails, arg: argOptional},
	"RESPONSE_FLAGS":                         {kind: opFlags},
	"RESPONSE_FLAGS_LONG":                    {kind: opFlagsLong},
	"DURATION":                               {kind: opDuration},
	"REQUEST_DURATION":                       {kind: opRequestDuration},
	"RESPONSE_DURATION":                      {kind: opResponseDuration},
	"RESPONSE_TX_DURATION":                   {kind: opResponseTxDuration},
	"BYTES_RECEIVED":                         {kind: opBytesReceived},
	"BYTES_SENT":                             {kind: opBytesSent},
	"PROTOCOL":                               {kind: opProtocol},
	"UPSTREAM_HOST":                          {kind: opUpstreamHost},
	"UPSTREAM_CLUSTER":                       {kind: opUpstreamCluster},
	"UPSTREAM_TRANSPORT_FAILURE_REASON":      {kind: opUpstreamTransportFailure},
	"UPSTREAM_REQUEST_ATTEMPT_COUNT":         {kind: opUpstreamAttempts},
	"DOWNSTREAM_REMOTE_ADDRESS":              {kind: opRemoteAddr},
	"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": {kind: opRemoteAddrNoPort, arg: argOptional},
	"DOWNSTREAM_REMOTE_PORT":                 {kind: opRemotePort},
	"DOWNSTREAM_LOCAL_ADDRESS":               {kind: opLocalAddr},
	"DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT":  {kind: opLocalAddrNoPort, arg: argOptional},
	"DOWNSTREAM_LOCAL_PORT":                  {kind: opLocalPort},
	"REQUESTED_SERVER_NAME":                  {kind: opServerName},
	"ROUTE_NAME":                             {kind: opRouteName},
	"TRACE_ID":                               {kind: opTraceID},
	"CONNECTION_ID":                          {kind: opConnectionID},
	"HOSTNAME":                               {kind: opHostname},
	"DYNAMIC_METADATA":                       {kind: opMetadata, arg: argRequired, trunc: true},
	"DURATION_MS":                            {kind: opDurationMS},
	"UPSTREAM_DURATION_MS":                   {kind: opUpstreamDurationMS},
	"ERROR":                                  {kind: opError},
}

// envoyOnly are Envoy operators the gateway has nothing to fill with: a format naming one is
// refused (rather than printing "-" forever), with a message saying so.
var envoyOnly = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range strings.Fields(`START_TIME_LOCAL EMIT_TIME EMIT_TIME_LOCAL REQUEST_HEADERS_BYTES
		BYTES_RETRANSMITTED PACKETS_RETRANSMITTED UPSTREAM_PROTOCOL CONNECTION_TERMINATION_DETAILS
		RESPONSE_HEADERS_BYTES RESPONSE_TRAILERS_BYTES UPSTREAM_WIRE_BYTES_SENT UPSTREAM_WIRE_BYTES_RECEIVED
		UPSTREAM_HEADER_BYTES_SENT UPSTREAM_DECOMPRESSED_HEADER_BYTES_SENT UPSTREAM_HEADER_BYTES_RECEIVED
		UPSTREAM_DECOMPRESSED_HEADER_BYTES_RECEIVED DOWNSTREAM_WIRE_BYTES_SENT DOWNSTREAM_WIRE_BYTES_RECEIVED
		DOWNSTREAM_HEADER_BYTES_SENT DOWNSTREAM_DECOMPRESSED_HEADER_BYTES_SENT DOWNSTREAM_HEADER_BYTES_RECEIVED
		DOWNSTREAM_DECOMPRESSED_HEADER_BYTES_RECEIVED COMMON_DURATION REQUEST_TX_DURATION ROUNDTRIP_DURATION
		DOWNSTREAM_HANDSHAKE_DURATION UPSTREAM_CONNECTION_POOL_READY_DURATION VIRTUAL_CLUSTER_NAME
		UPSTREAM_HOST_NAME UPSTREAM_HOST_NAME_WITHOUT_PORT UPSTREAM_CLUSTER_RAW UPSTREAM_LOCAL_ADDRESS
		UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT UPSTREAM_LOCAL_PORT UPSTREAM_REMOTE_ADDRESS
		UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT UPSTREAM_REMOTE_PORT UPSTREAM_REMOTE_ADDRESS_ENDPOINT_ID
		DOWNSTREAM_TRANSPORT_FAILURE_REASON DOWNSTREAM_LOCAL_CLOSE_REASON DOWNSTREAM_DETECTED_CLOSE_TYPE
		DOWNSTREAM_DIRECT_REMOTE_ADDRESS DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT DOWNSTREAM_DIRECT_REMOTE_PORT
		DOWNSTREAM_DIRECT_LOCAL_ADDRESS DOWNSTREAM_DIRECT_LOCAL_ADDRESS_WITHOUT_PORT DOWNSTREAM_DIRECT_LOCAL_PORT
		DOWNSTREAM_LOCAL_ADDRESS_ENDPOINT_ID DOWNSTREAM_DIRECT_LOCAL_ADDRESS_ENDPOINT_ID UPSTREAM_CONNECTION_ID
		STREAM_ID GRPC_STATUS GRPC_STATUS_NUMBER CLUSTER_METADATA UPSTREAM_METADATA FILTER_STATE
		UPSTREAM_FILTER_STATE DOWNSTREAM_LOCAL_IP_SAN DOWNSTREAM_PEER_IP_SAN DOWNSTREAM_LOCAL_DNS_SAN
		DOWNSTREAM_PEER_DNS_SAN DOWNSTREAM_LOCAL_URI_SAN DOWNSTREAM_PEER_URI_SAN DOWNSTREAM_LOCAL_EMAIL_SAN
		DOWNSTREAM_PEER_EMAIL_SAN DOWNSTREAM_LOCAL_OTHERNAME_SAN DOWNSTREAM_PEER_OTHERNAME_SAN
		DOWNSTREAM_LOCAL_SUBJECT DOWNSTREAM_PEER_SUBJECT DOWNSTREAM_PEER_ISSUER DOWNSTREAM_TLS_SESSION_ID
		DOWNSTREAM_TLS_CIPHER DOWNSTREAM_TLS_VERSION DOWNSTREAM_PEER_FINGERPRINT_256 DOWNSTREAM_PEER_FINGERPRINT_1
		DOWNSTREAM_PEER_SERIAL DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_256 DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_1
		DOWNSTREAM_PEER_CHAIN_SERIALS DOWNSTREAM_PEER_CERT TLS_JA3_FINGERPRINT TLS_JA4_FINGERPRINT
		DOWNSTREAM_PEER_CERT_V_START DOWNSTREAM_PEER_CERT_V_END UPSTREAM_PEER_SUBJECT UPSTREAM_PEER_ISSUER
		UPSTREAM_TLS_SESSION_ID UPSTREAM_TLS_CIPHER UPSTREAM_TLS_VERSION UPSTREAM_PEER_CERT
		UPSTREAM_PEER_CERT_V_START UPSTREAM_PEER_CERT_V_END UPSTREAM_PEER_URI_SAN UPSTREAM_PEER_DNS_SAN
		UPSTREAM_PEER_IP_SAN UPSTREAM_LOCAL_URI_SAN UPSTREAM_LOCAL_DNS_SAN UPSTREAM_LOCAL_IP_SAN
		LOCAL_REPLY_BODY FILTER_CHAIN_NAME ACCESS_LOG_TYPE UNIQUE_ID ENVIRONMENT QUERY_PARAM CUSTOM_FLAGS
		COALESCE METADATA CEL TYPED_CEL`) {
		m[n] = true
	}
	return m
}()

// knownList is the supported operators for error messages.
var knownList = strings.Join(operatorNames, ", ")
