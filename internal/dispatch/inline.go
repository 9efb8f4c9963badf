package dispatch

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

type actionJob struct {
	ctx    context.Context
	action plugins.ActionDescriptor
	inv    plugins.Invocation
}

// runJob runs the action, turning a panic into an outcome.
func runJob(job *actionJob) (out runOutcome) {
	defer func() {
		if p := recover(); p != nil {
			out.panicked = p
		}
	}()
	out.err = job.action.Run(job.ctx, job.inv)
	return out
}

// Inline run states (runInline).
const (
	inlineRunning int32 = iota
	inlineReturned
	inlineAbandoned
)

// runInline runs job on the calling goroutine. If job.ctx ends (deadline
// or cancellation) and the action has still not returned grace later,
// abandon runs on a timer goroutine, and runInline reports ok == false
// whenever the action does return. Exactly one of the two wins.
func runInline(job *actionJob, grace time.Duration, abandon func()) (out runOutcome, ok bool) {
	var state atomic.Int32
	var graceTimer atomic.Pointer[time.Timer]
	stop := context.AfterFunc(job.ctx, func() {
		graceTimer.Store(time.AfterFunc(grace, func() {
			if state.CompareAndSwap(inlineRunning, inlineAbandoned) {
				abandon()
			}
		}))
	})
	out = runJob(job)
	if !stop() {
		// ctx ended while the action ran: the grace timer is (being) set.
		if t := graceTimer.Load(); t != nil {
			t.Stop()
		}
	}
	return out, state.CompareAndSwap(inlineRunning, inlineReturned)
}
