package extauthz

import (
	"context"
	"errors"
	"fmt"
)

// Outcome classifies one check for metrics and the access log: short, stable, and safe as a
// label value.
type Outcome string

// The outcomes. Allowed and Denied are answers; every other outcome is a failure, which the
// caller handles with its failure mode.
const (
	OutcomeAllowed Outcome = "allowed"
	OutcomeDenied  Outcome = "denied"
	// OutcomeTimeout: the context's deadline passed before the service answered.
	OutcomeTimeout Outcome = "timeout"
	// OutcomeCanceled: the context was canceled (typically the client went away).
	OutcomeCanceled Outcome = "canceled"
	// OutcomeUnavailable: the service could not be reached, or the connection failed.
	OutcomeUnavailable Outcome = "unavailable"
	// OutcomeProtocolError: the service answered with something that is not a valid reply
	// (wrong service or method, undecodable message, malformed HTTP).
	OutcomeProtocolError Outcome = "protocol_error"
	// OutcomeServiceError: the service said it failed: a gRPC error status or error_response,
	// or an HTTP 5xx. Error.Reply holds what it asked to send, if anything.
	OutcomeServiceError Outcome = "service_error"
	// OutcomeInvalidRequest: the check request could not be built from the Request (say, a
	// method that is not an HTTP token). Nothing was sent.
	OutcomeInvalidRequest Outcome = "invalid_request"
)

// Error is the error Check returns: why the service gave no answer.
type Error struct {
	Outcome Outcome
	// Reply is the response the service asked for while reporting its failure (gRPC
	// error_response, or the body and headers of an HTTP 5xx), already filtered like a
	// denial; nil otherwise. Its Status is 0 when the service named none. A caller that fails
	// closed may send it instead of an empty statusOnError response, as Envoy does.
	Reply *Decision
	// Err is the underlying error.
	Err error
}

// Error describes the failure without any header or body content.
func (e *Error) Error() string {
	if e.Err == nil {
		return "extauthz: " + string(e.Outcome)
	}
	return fmt.Sprintf("extauthz: %s: %v", e.Outcome, e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// OutcomeOf classifies the result of a Check. An error that is not an *Error is classified
// by the context errors it wraps, else as OutcomeUnavailable.
func OutcomeOf(d *Decision, err error) Outcome {
	if err != nil {
		var e *Error
		switch {
		case errors.As(err, &e):
			return e.Outcome
		case errors.Is(err, context.DeadlineExceeded):
			return OutcomeTimeout
		case errors.Is(err, context.Canceled):
			return OutcomeCanceled
		default:
			return OutcomeUnavailable
		}
	}
	if d != nil && d.Allowed {
		return OutcomeAllowed
	}
	return OutcomeDenied
}

// ctxOutcome reports the context's error as an outcome, if it has one.
func ctxOutcome(ctx context.Context) (Outcome, bool) {
	switch err := ctx.Err(); {
	case err == nil:
		return "", false
	case errors.Is(err, context.DeadlineExceeded):
		return OutcomeTimeout, true
	default:
		return OutcomeCanceled, true
	}
}
