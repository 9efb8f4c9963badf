package worker

import "sync"

// byteBudget bounds the body bytes the intake holds at once (security
// issue 12 item 4): a message takes its size from it before it is decoded
// and gives it back once settled. Decoding, the action's input and the
// dead letter each cost a multiple of a body's size, so concurrency alone
// does not bound the heap: 16 slots of 8 MiB events drove RSS far past a
// 256 Mi pod. A message larger than the whole budget takes all of it and
// runs alone.
//
// Waiters are not queued in order: small messages may pass a big one
// waiting for room. The intake holds at most a fixed number of messages,
// so a big one waits at most until those settle.
type byteBudget struct {
	mu      sync.Mutex
	size    int64
	free    int64
	waiters int
	// wake is closed (and replaced) by a release while someone waits.
	wake chan struct{}
}

func newByteBudget(size int64) *byteBudget {
	return &byteBudget{size: size, free: size, wake: make(chan struct{})}
}

// cost is what a body of n bytes takes: n, at most the whole budget.
func (b *byteBudget) cost(n int) int64 { return min(int64(n), b.size) }

// acquire takes n bytes (cost), waiting for room; false when stop is
// closed first (nothing is taken then).
func (b *byteBudget) acquire(n int64, stop <-chan struct{}) bool {
	b.mu.Lock()
	for b.free < n {
		b.waiters++
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-stop:
			b.mu.Lock()
			b.waiters--
			b.mu.Unlock()
			return false
		}
		b.mu.Lock()
		b.waiters--
	}
	b.free -= n
	b.mu.Unlock()
	return true
}

// tryAcquire takes n bytes if they are free now.
func (b *byteBudget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.free < n {
		return false
	}
	b.free -= n
	return true
}

// release gives back n bytes taken by acquire.
func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.free += n
	if b.waiters > 0 {
		close(b.wake)
		b.wake = make(chan struct{})
	}
	b.mu.Unlock()
}

// inUse is how many bytes are taken (tests, metrics).
func (b *byteBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size - b.free
}

// freeBytes is how many bytes are free now (the pull loop's byte limit).
func (b *byteBudget) freeBytes() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.free
}
