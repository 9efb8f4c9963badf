package publisher

import (
	"errors"
	"fmt"
)

// ErrInvalidMessage is matched (errors.Is) by every *InvalidMessageError: the
// typed input cannot become a contract-conforming CloudEvent, so nothing was
// published. Fix the input; retrying does not help.
var ErrInvalidMessage = errors.New("publisher: invalid message")

// ErrClosed is returned by a Publisher used after Close.
var ErrClosed = errors.New("publisher: closed")

// InvalidMessageError names the input field that broke the contract.
type InvalidMessageError struct {
	Field  string
	Reason string
	Err    error
}

func (e *InvalidMessageError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("publisher: invalid %s: %s: %v", e.Field, e.Reason, e.Err)
	}
	return fmt.Sprintf("publisher: invalid %s: %s", e.Field, e.Reason)
}

// Unwrap exposes the cause (e.g. a *wire.InvalidHandlerError).
func (e *InvalidMessageError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrInvalidMessage) true.
func (e *InvalidMessageError) Is(target error) bool { return target == ErrInvalidMessage }

// PublishError is a publish the server did not acknowledge (no stream bound
// to the subject, timeout, connection lost, stream limits). The event may or
// may not be stored; publishing it again with the same Nats-Msg-Id inside the
// stream's duplicate window is safe.
type PublishError struct {
	Subject string
	ID      string
	Err     error
}

func (e *PublishError) Error() string {
	return fmt.Sprintf("publisher: publish %s to %s: %v", e.ID, e.Subject, e.Err)
}

func (e *PublishError) Unwrap() error { return e.Err }
