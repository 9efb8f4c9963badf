package dispatch

import "context"

type messageKey struct{}
type attemptKey struct{}

// WithAttempt records the delivery attempt (JetStream NumDelivered) of the
// message about to be dispatched; an action run elsewhere (internal/remote)
// forwards it.
func WithAttempt(ctx context.Context, attempt int) context.Context {
	return context.WithValue(ctx, attemptKey{}, attempt)
}

// AttemptFrom returns the attempt WithAttempt recorded (0: unknown).
func AttemptFrom(ctx context.Context) int {
	n, _ := ctx.Value(attemptKey{}).(int)
	return n
}

// MessageFrom returns the request whose action ctx runs: the context an
// action's code receives carries it, so an action forwarded to a remote
// host can send the CloudEvent data and id as they arrived.
func MessageFrom(ctx context.Context) *Request {
	m, _ := ctx.Value(messageKey{}).(*Request)
	return m
}

func withMessage(ctx context.Context, msg *Request) context.Context {
	return context.WithValue(ctx, messageKey{}, msg)
}
