package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// ErrNotReplayable: the letter lacks what replay needs (its
// Imbi-Dlq-Original-Subject), or that subject is not a work subject.
var ErrNotReplayable = errors.New("dead letter cannot be replayed")

// maxDuplicateRetries bounds how often Replay picks the next replay number
// when the work stream reports the Nats-Msg-Id as a duplicate.
const maxDuplicateRetries = 5

// Replayed is the outcome of replaying one letter.
type Replayed struct {
	Seq       uint64 `json:"seq"`
	EventID   string `json:"event_id,omitempty"`
	Subject   string `json:"subject"`
	MsgID     string `json:"msg_id"`
	WorkSeq   uint64 `json:"work_seq,omitempty"`
	DryRun    bool   `json:"dry_run,omitempty"`
	Replays   int    `json:"replays"`
	Deleted   bool   `json:"deleted"`
	DeleteErr string `json:"delete_error,omitempty"`
}

// ReplayMsg is the message Replay publishes for l (wire-contract §5): the
// original body and headers minus every Imbi-Dlq-* header, to
// Imbi-Dlq-Original-Subject, with Nats-Msg-Id "<ce id>.replay.<n>" so the
// work stream's duplicate window does not swallow it, while the
// CloudEvent id stays the same for idempotency. n is one more than the
// replay number in the letter's own Nats-Msg-Id: a replayed message that
// dies again carries "<ce id>.replay.<n>" into its next dead letter, so
// the count survives without a header of its own (and each dead letter of
// one event has a distinct Nats-Msg-Id, which the dead-letter stream's
// dedup window would otherwise drop).
func (s *Store) ReplayMsg(l Letter, n int) (*nats.Msg, error) {
	target := l.OriginalSubject
	if target == "" {
		return nil, fmt.Errorf("seq %d has no %s header: %w", l.Seq, wire.DLQOriginalSubject, ErrNotReplayable)
	}
	if !strings.HasPrefix(target, s.cfg.WorkPrefix+".") {
		return nil, fmt.Errorf("seq %d: original subject %q is not under the work prefix %s: %w", l.Seq, target, s.cfg.WorkPrefix, ErrNotReplayable)
	}
	msg := nats.NewMsg(target)
	for k, vs := range l.Header {
		if wire.IsDLQHeader(k) || strings.EqualFold(k, wire.HeaderMsgID) {
			continue
		}
		for _, v := range vs {
			msg.Header.Add(k, v)
		}
	}
	msg.Header.Set(wire.HeaderMsgID, replayMsgID(l, n))
	if headerGet(l.Header, wire.DLQChainContinued) == "true" {
		// The chain's next step went out before this step died
		// (on_failure continue): the worker must not continue it again.
		msg.Header.Set(wire.HeaderChainContinued, "true")
	}
	msg.Data = l.Data
	return msg, nil
}

// replayMsgID is "<ce id>.replay.<n>". A letter without a CloudEvent id
// (bytes that were not an event) uses its original Nats-Msg-Id, else its
// dead-letter sequence, in place of the id.
func replayMsgID(l Letter, n int) string {
	base := l.EventID
	if base == "" {
		base, _ = splitReplayID(headerGet(l.Header, wire.HeaderMsgID))
	}
	if base == "" {
		base = "dlq-" + strconv.FormatUint(l.Seq, 10)
	}
	return base + ".replay." + strconv.Itoa(n)
}

// Replay republishes one letter and deletes it once the work stream has
// acknowledged the publish. The letter is never deleted when the publish
// fails or the server reports it as a duplicate (that would lose the
// message); a duplicate is retried with the next replay number. With
// dryRun nothing is published or deleted.
func (s *Store) Replay(ctx context.Context, l Letter, dryRun bool) (Replayed, error) {
	n := l.Replays + 1
	for range maxDuplicateRetries {
		msg, err := s.ReplayMsg(l, n)
		if err != nil {
			return Replayed{Seq: l.Seq}, err
		}
		r := Replayed{Seq: l.Seq, EventID: l.EventID, Subject: msg.Subject, MsgID: msg.Header.Get(wire.HeaderMsgID), Replays: n, DryRun: dryRun}
		if dryRun {
			return r, nil
		}
		ack, err := s.js.PublishMsg(ctx, msg)
		if err != nil {
			return r, fmt.Errorf("replay seq %d to %s: %w", l.Seq, msg.Subject, err)
		}
		if ack.Duplicate {
			n++
			continue
		}
		r.WorkSeq = ack.Sequence
		if err := s.Delete(ctx, l.Seq); err != nil && !errors.Is(err, ErrNotFound) {
			// Published but still here: a second replay is safe, the
			// worker's done-marker skips an event it already ran.
			r.DeleteErr = err.Error()
			return r, fmt.Errorf("replayed seq %d (work seq %d) but could not delete it: %w", l.Seq, ack.Sequence, err)
		}
		r.Deleted = true
		return r, nil
	}
	return Replayed{Seq: l.Seq}, fmt.Errorf("replay seq %d: Nats-Msg-Id still a duplicate after %d tries", l.Seq, maxDuplicateRetries)
}

// ReplayOptions tune ReplayAll.
type ReplayOptions struct {
	// DryRun lists what would be replayed without publishing or deleting.
	DryRun bool
	// Rate caps replays per second (0: as fast as acks come back), so a
	// large replay does not flood the workers or a recovering upstream.
	Rate float64
	// Progress, if set, is called after each letter with done and total.
	Progress func(done, total int)
	// KeepGoing continues after a letter fails instead of stopping.
	KeepGoing bool
}

// ReplaySummary is the outcome of ReplayAll.
type ReplaySummary struct {
	Matched  int        `json:"matched"`
	Replayed int        `json:"replayed"`
	Failed   int        `json:"failed"`
	DryRun   bool       `json:"dry_run,omitempty"`
	Letters  []Replayed `json:"letters"`
	Errors   []string   `json:"errors,omitempty"`
}

// ReplayAll replays every letter f selects, oldest first. The selection is
// taken first (sequences only), so letters that die again during the
// replay are not picked up twice.
func (s *Store) ReplayAll(ctx context.Context, f Filter, o ReplayOptions) (ReplaySummary, error) {
	var seqs []uint64
	if err := s.Each(ctx, f, func(l Letter) error {
		seqs = append(seqs, l.Seq)
		return nil
	}); err != nil {
		return ReplaySummary{}, err
	}
	sum := ReplaySummary{Matched: len(seqs), DryRun: o.DryRun, Letters: []Replayed{}}
	var interval time.Duration
	if o.Rate > 0 {
		interval = time.Duration(float64(time.Second) / o.Rate)
	}
	start := time.Now()
	for i, seq := range seqs {
		if interval > 0 && i > 0 {
			// Pace against the start, not the previous send, so slow
			// acks do not lower the rate below what was asked.
			if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return sum, ctx.Err()
				case <-t.C:
				}
			}
		}
		var (
			r   Replayed
			err error
		)
		l, gerr := s.Get(ctx, seq)
		switch {
		case errors.Is(gerr, ErrNotFound):
			// Replayed or purged by someone else meanwhile: nothing to do.
			sum.Matched--
		case gerr != nil:
			err = gerr
		default:
			r, err = s.Replay(ctx, l, o.DryRun)
		}
		if err != nil {
			sum.Failed++
			sum.Errors = append(sum.Errors, err.Error())
			if !o.KeepGoing {
				return sum, err
			}
		} else if gerr == nil {
			sum.Replayed++
			sum.Letters = append(sum.Letters, r)
		}
		if o.Progress != nil {
			o.Progress(i+1, len(seqs))
		}
	}
	return sum, nil
}
