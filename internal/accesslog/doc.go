// Package accesslog formats access-log lines the way Envoy's command operators describe them
// (https://www.envoyproxy.io/docs/envoy/latest/configuration/observability/access_log/usage),
// as text or as one JSON object per line. A format is compiled once per configuration
// (ParseText, ParseJSON) and then appends one line per exchange into a caller's buffer
// (Format.Append) without allocating: the gateway logs every HTTP request, TCP or TLS
// connection and UDP session, so the line is on the hot path. The package imports only the
// standard library.
//
// # Operators
//
// Supported, with Envoy's meaning (see Record for where each value comes from):
//
//	%START_TIME% %START_TIME(FMT)%       start, UTC; FMT is strftime: %Y %C %y %m %d %e %j %H %I %M %S
//	                                     %p %a %A %b %h %B %z %Z %s %u %w %F %T %R %D %t %%, %f and
//	                                     %1f..%9f (fractional digits), %E0S..%E9S (seconds with
//	                                     digits); default %Y-%m-%dT%H:%M:%S.%3fZ
//	%REQ(X?Y):Z% %REQUEST_HEADER(X?Y):Z% request header X, else Y, cut to Z bytes; pseudo-headers
//	                                     :method :path :authority :scheme :protocol
//	%RESP(X?Y):Z% %RESPONSE_HEADER(...)% response header (pseudo-header :status)
//	%TRAILER(X?Y):Z% %RESPONSE_TRAILER(...)%
//	%REQ_WITHOUT_QUERY(X?Y):Z%           as REQ, cut at the first "?"
//	%PATH(X:Y):Z%                        X: WQ (with query, default) or NQ; Y: ORIG, PATH or
//	                                     ORIG_OR_PATH (default)
//	%RESPONSE_CODE% %RESPONSE_CODE_DETAILS% %RESPONSE_CODE_DETAILS(ALLOW_WHITESPACES)%
//	%RESPONSE_FLAGS% %RESPONSE_FLAGS_LONG%
//	%DURATION% %REQUEST_DURATION% %RESPONSE_DURATION% %RESPONSE_TX_DURATION%   whole milliseconds
//	%BYTES_RECEIVED% %BYTES_SENT% %PROTOCOL%
//	%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %UPSTREAM_TRANSPORT_FAILURE_REASON% %UPSTREAM_REQUEST_ATTEMPT_COUNT%
//	%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT(MASK_PREFIX_LEN)% %DOWNSTREAM_REMOTE_PORT%
//	%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT(MASK_PREFIX_LEN)% %DOWNSTREAM_LOCAL_PORT%
//	%REQUESTED_SERVER_NAME% %ROUTE_NAME% %TRACE_ID% %CONNECTION_ID%
//	%HOSTNAME%                           the host's name, read when the format is compiled
//	%DYNAMIC_METADATA(NS:KEY):Z%         a metadata value; %DYNAMIC_METADATA(NS)% the namespace as
//	                                     a JSON object of its keys
//	%%                                   a literal percent sign
//
// Apoxy extensions, for the gateway's own line (DefaultJSON):
//
//	%DURATION_MS%           Record.Duration in milliseconds with microsecond precision (1.25)
//	%UPSTREAM_DURATION_MS%  Record.UpstreamDuration, likewise; missing under a microsecond
//	%ERROR%                 Record.Error
//
// Any other name is an error when the format is compiled, Envoy operators the gateway has
// nothing to fill with included (they would print "-" forever). Errors (*Error) name the
// token and its byte offset.
//
// # Values
//
// A missing value (a header not sent, an empty field, an unknown duration) prints "-" in text
// and in a JSON string, and null as a JSON value of its own (JSONField.Empty chooses otherwise).
// RESPONSE_CODE prints 0 when there was no response, as Envoy does. In JSON a field whose format
// is exactly one operator keeps its type: numbers for RESPONSE_CODE, the durations, BYTES_*,
// UPSTREAM_REQUEST_ATTEMPT_COUNT, CONNECTION_ID, the ports and the _MS extensions; an object for
// DYNAMIC_METADATA(NS); a string otherwise. JSON output is always valid JSON: strings are
// escaped by AppendJSONString's rules (invalid UTF-8 replaced).
//
// The ":Z" max length cuts bytes, backing off to the start of a UTF-8 sequence the cut would
// split, so a cut value stays valid UTF-8 (and is at most Z bytes). A header sent several
// times prints its values joined by "," (the length limit applies to the joined value).
//
// # Where this differs from Envoy
//
//   - Every line ends in exactly one newline (ParseText); Envoy writes a text format's own
//     newline only. A line break inside a text format is refused, and control characters in
//     text values are escaped (\n, \r, \t, \xHH): one exchange is one line, whatever a client
//     sends.
//   - A header sent several times: Envoy logs the first occurrence of most headers (its codec
//     joins some, such as X-Forwarded-For, with ","); we join all of them with ",".
//   - %REQ(HOST)% prints the :authority (net/http keeps Host out of the header map; Envoy prints
//     "-"). %REQ(X-ENVOY-ORIGINAL-PATH)% is Record.OriginalPath, never a client's own header.
//   - Unknown pseudo-headers (%REQ(:foo)%) and nested metadata keys (NS:KEY:SUBKEY: the
//     gateway's metadata values are strings) are refused rather than printing "-".
//   - As a JSON value of its own every missing value is null, PROTOCOL's included (Envoy
//     documents "-" for it); %DYNAMIC_METADATA(NS)% is compact JSON (Envoy's examples show
//     spaces after ":" and ",").
//   - IPv4-mapped IPv6 addresses print as IPv4; a mask longer than the address is the whole
//     address.
//   - Response flags print in bit order (Flags), not Envoy's table order.
//   - JSON fields keep the order given (Envoy sorts keys; JSONFieldsFromMap sorts).
package accesslog
