package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aweber-imbi/imbi-worker/internal/dlq"
)

// Job states.
const (
	JobRunning   = "running"
	JobDone      = "done"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// maxJobErrors bounds the errors a job keeps.
const maxJobErrors = 20

// maxJobs bounds the finished jobs kept for polling.
const maxJobs = 50

// JobStatus is a bulk replay's progress.
type JobStatus struct {
	ID    string  `json:"id"`
	State string  `json:"state"`
	Query Query   `json:"filter"`
	Rate  float64 `json:"rate"`
	// Matched is the match set taken when the job started; Done counts
	// letters handled so far (Replayed + Skipped + Failed).
	Matched  int       `json:"matched"`
	Done     int       `json:"done"`
	Replayed int       `json:"replayed"`
	Skipped  int       `json:"skipped"` // gone meanwhile (replayed, purged, aged out)
	Failed   int       `json:"failed"`
	Errors   []string  `json:"errors,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
}

type job struct {
	mu     sync.Mutex
	st     JobStatus
	cancel context.CancelFunc
}

func (j *job) status() JobStatus {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.st
	s.Errors = slices.Clone(s.Errors)
	return s
}

type jobs struct {
	mu    sync.Mutex
	byID  map[string]*job
	order []string
	wg    sync.WaitGroup
}

func newJobs() *jobs { return &jobs{byID: map[string]*job{}} }

func (js *jobs) get(id string) (JobStatus, bool) {
	js.mu.Lock()
	j := js.byID[id]
	js.mu.Unlock()
	if j == nil {
		return JobStatus{}, false
	}
	return j.status(), true
}

// list is every kept job, newest first.
func (js *jobs) list() []JobStatus {
	js.mu.Lock()
	ids := slices.Clone(js.order)
	js.mu.Unlock()
	out := make([]JobStatus, 0, len(ids))
	for i := len(ids) - 1; i >= 0; i-- {
		if s, ok := js.get(ids[i]); ok {
			out = append(out, s)
		}
	}
	return out
}

// cancel stops a running job (its letters not yet replayed stay dead
// letters); false when there is no such job.
func (js *jobs) cancel(id string) (JobStatus, bool) {
	js.mu.Lock()
	j := js.byID[id]
	js.mu.Unlock()
	if j == nil {
		return JobStatus{}, false
	}
	j.cancel()
	for range 200 { // the loop notices within one letter
		if st := j.status(); st.State != JobRunning {
			return st, true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return j.status(), true
}

func (js *jobs) cancelAll() {
	js.mu.Lock()
	for _, j := range js.byID {
		j.cancel()
	}
	js.mu.Unlock()
	js.wg.Wait()
}

func (js *jobs) start(ix *index, q Query, seqs []uint64, rate float64, log *slog.Logger) JobStatus {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	ctx, cancel := context.WithCancel(context.Background())
	j := &job{cancel: cancel, st: JobStatus{ID: hex.EncodeToString(b), State: JobRunning, Query: q, Rate: rate, Matched: len(seqs), Started: time.Now().UTC()}}
	js.mu.Lock()
	js.byID[j.st.ID] = j
	js.order = append(js.order, j.st.ID)
	for len(js.order) > maxJobs {
		old := js.byID[js.order[0]]
		if old.status().State == JobRunning {
			break
		}
		delete(js.byID, js.order[0])
		js.order = js.order[1:]
	}
	js.mu.Unlock()
	js.wg.Go(func() {
		defer cancel()
		j.run(ctx, ix, seqs, rate, log)
	})
	return j.status()
}

// run replays seqs in order, paced against the start so slow acks do not
// lower the rate. Each letter is read again just before it is replayed
// (it may be gone), and the index entry is dropped once the replay has
// deleted it.
func (j *job) run(ctx context.Context, ix *index, seqs []uint64, rate float64, log *slog.Logger) {
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	start := time.Now()
	state := JobDone
	for i, seq := range seqs {
		if interval > 0 && i > 0 {
			if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
				case <-t.C:
				}
			}
		}
		if ctx.Err() != nil {
			state = JobCancelled
			break
		}
		ix.mu.Lock()
		l, err := ix.store.Get(ctx, seq)
		skipped := errors.Is(err, dlq.ErrNotFound)
		if err == nil {
			var r dlq.Replayed
			r, err = ix.store.Replay(ctx, l, false)
			if r.Deleted {
				ix.remove(seq)
			}
		} else if skipped {
			ix.remove(seq)
			err = nil
		}
		ix.mu.Unlock()
		j.mu.Lock()
		j.st.Done++
		switch {
		case skipped:
			j.st.Skipped++
		case err != nil:
			j.st.Failed++
			if len(j.st.Errors) < maxJobErrors {
				j.st.Errors = append(j.st.Errors, err.Error())
			}
		default:
			j.st.Replayed++
		}
		j.mu.Unlock()
	}
	j.mu.Lock()
	if state == JobDone && j.st.Failed > 0 {
		state = JobFailed
	}
	j.st.State, j.st.Finished = state, time.Now().UTC()
	st := j.st
	j.mu.Unlock()
	log.Info("dead-letter replay job finished", "job", st.ID, "state", st.State, "matched", st.Matched, "replayed", st.Replayed, "skipped", st.Skipped, "failed", st.Failed)
}
