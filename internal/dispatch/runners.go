package dispatch

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// Actions run in their own goroutine so one that ignores its deadline
// cannot hold the caller (run). Starting a goroutine per action cost its
// creation plus, every time, growing its stack to the depth an action
// reaches (≈ 11 % of a no-op dispatch in BenchmarkDispatch; more for an
// HTTP call). Runners are goroutines kept for the next action with their
// grown stacks; one that stays idle for runnerIdle exits.

// runnerIdle is how long an idle runner waits for work before it exits.
const runnerIdle = 30 * time.Second

// maxIdleRunners bounds the idle runners kept (more than any sane
// --concurrency); a runner finding the pool full exits.
const maxIdleRunners = 256

type actionJob struct {
	ctx    context.Context
	action plugins.ActionDescriptor
	inv    plugins.Invocation
	done   chan runOutcome // buffered: an abandoned action can still finish
}

type runner struct {
	jobs chan *actionJob // buffered 1: handing a job over never blocks
}

// runnerPool is a stack of idle runners (last used first: its stack is
// the warmest).
type runnerPool struct {
	mu   sync.Mutex
	idle []*runner
	// idleFor overrides runnerIdle (tests).
	idleFor time.Duration
}

func (p *runnerPool) idleTimeout() time.Duration {
	if p.idleFor > 0 {
		return p.idleFor
	}
	return runnerIdle
}

// start runs job on an idle runner, or a new one.
func (p *runnerPool) start(job *actionJob) {
	p.mu.Lock()
	var r *runner
	if n := len(p.idle); n > 0 {
		r = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
	}
	p.mu.Unlock()
	if r == nil {
		r = &runner{jobs: make(chan *actionJob, 1)}
		go p.loop(r)
	}
	r.jobs <- job
}

func (p *runnerPool) loop(r *runner) {
	idle := p.idleTimeout()
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for {
		select {
		case job := <-r.jobs:
			job.done <- runJob(job)
			if !p.park(r) {
				return
			}
			timer.Reset(idle)
		case <-timer.C:
			if p.leave(r) {
				return
			}
			// Taken from the pool just now: its job is on the way.
			timer.Reset(idle)
		}
	}
}

// park returns r to the pool; false when the pool is full.
func (p *runnerPool) park(r *runner) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) >= maxIdleRunners {
		return false
	}
	p.idle = append(p.idle, r)
	return true
}

// leave removes an idle r from the pool; false when r is no longer in it
// (a caller took it and is handing it a job).
func (p *runnerPool) leave(r *runner) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.idle {
		if x == r {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			return true
		}
	}
	return false
}

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

// runInline runs job on the calling goroutine. If ctx ends (deadline or
// cancellation) and the action has still not returned grace later,
// abandon runs on a timer goroutine, and runInline reports ok == false
// whenever the action does return. Exactly one of the two wins.
func runInline(ctx context.Context, grace time.Duration, job *actionJob, abandon func()) (out runOutcome, ok bool) {
	var state atomic.Int32
	var graceTimer atomic.Pointer[time.Timer]
	stop := context.AfterFunc(ctx, func() {
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
