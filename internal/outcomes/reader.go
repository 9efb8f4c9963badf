package outcomes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// Filter selects outcome events; empty fields match everything.
type Filter struct {
	// Handler is "<plugin>#<action>", a bare "<plugin>" (all its
	// actions) or "_invalid"; it becomes the consumer's subject filter.
	Handler string
	// Status is one of wire.OutcomeStatuses.
	Status string
	// Project matches data.context.project_id or project_slug.
	Project string
	// Since bounds the event's time (inclusive); zero: unbounded.
	Since time.Time
	// Limit is the most events Recent returns (DefaultLimit when ≤ 0).
	Limit int
}

// Read bounds.
const (
	// DefaultLimit is Recent's limit when the filter sets none.
	DefaultLimit = 100
	// MaxLimit caps Filter.Limit.
	MaxLimit = 1000
	// DefaultScan is how many stream messages one Recent call reads at
	// most, newest first: the bound on its work when the filter matches
	// few of them.
	DefaultScan = 50_000
	// window is how many sequences Recent reads per step back.
	window = 1000
	// fetchWait bounds one fetch of a window that should have messages.
	fetchWait = 2 * time.Second
)

var pluginSlug = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// subjectFilter is the outcome subject of a handler filter.
func subjectFilter(prefix, handler string) (string, error) {
	switch {
	case handler == "":
		return prefix + ".>", nil
	case handler == wire.InvalidToken:
		return prefix + "." + wire.InvalidToken, nil
	case pluginSlug.MatchString(handler):
		return prefix + "." + handler + ".>", nil
	}
	h, err := wire.ParseHandler(handler)
	if err != nil {
		return "", fmt.Errorf("handler filter %q: want <plugin>#<action>, <plugin> or %s", handler, wire.InvalidToken)
	}
	return prefix + "." + h.Plugin + "." + h.Action, nil
}

// Validate checks the filter's status and handler.
func (f Filter) Validate() error {
	if f.Status != "" {
		ok := false
		for _, s := range wire.OutcomeStatuses {
			ok = ok || string(s) == f.Status
		}
		if !ok {
			return fmt.Errorf("status %q: want one of %v", f.Status, wire.OutcomeStatuses)
		}
	}
	_, err := subjectFilter(wire.DefaultOutcomesPrefix, f.Handler)
	return err
}

// Match reports whether ev passes the filter's status, project and since
// (the handler is the subject filter's job).
func (f Filter) Match(ev *Event) bool {
	if f.Status != "" && string(ev.Data.Status) != f.Status {
		return false
	}
	if f.Project != "" && ev.Data.Context.ProjectID != f.Project && ev.Data.Context.ProjectSlug != f.Project {
		return false
	}
	return f.Since.IsZero() || !ev.Time.Before(f.Since)
}

// Reader reads the outcome stream.
type Reader struct {
	js     jetstream.JetStream
	stream string
	prefix string
	// Scan bounds the messages one Recent call reads (DefaultScan).
	Scan int
}

// NewReader reads stream (subjects prefix.>) on js.
func NewReader(js jetstream.JetStream, stream, prefix string) *Reader {
	return &Reader{js: js, stream: stream, prefix: prefix, Scan: DefaultScan}
}

// Stored is an outcome event and its stream sequence.
type Stored struct {
	Event
	Seq uint64 `json:"-"`
}

// Recent returns the newest events that match f, newest first: it reads
// the stream back from its last sequence in windows of 1,000, with the
// handler as subject filter, until it has f.Limit events, passed
// f.Since, or read r.Scan messages.
func (r *Reader) Recent(ctx context.Context, f Filter) ([]Stored, error) {
	subj, err := subjectFilter(r.prefix, f.Handler)
	if err != nil {
		return nil, err
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	s, err := r.js.Stream(ctx, r.stream)
	if err != nil {
		return nil, fmt.Errorf("outcome stream %s: %w", r.stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("outcome stream %s: %w", r.stream, err)
	}
	first, hi := info.State.FirstSeq, info.State.LastSeq
	var out []Stored
	scanned := 0
	for hi >= first && hi > 0 && len(out) < limit && scanned < r.Scan {
		lo := first
		if hi-first+1 > window {
			lo = hi - window + 1
		}
		batch, err := r.read(ctx, subj, lo, hi)
		if err != nil {
			return nil, err
		}
		scanned += int(hi - lo + 1)
		older := false
		for i := len(batch) - 1; i >= 0 && len(out) < limit; i-- {
			ev := &batch[i]
			if !f.Since.IsZero() && ev.Time.Before(f.Since) {
				older = true
				continue
			}
			if f.Match(&ev.Event) {
				out = append(out, *ev)
			}
		}
		if older || lo == first {
			break
		}
		hi = lo - 1
	}
	return out, nil
}

// read returns the events stored at sequences lo..hi on subj, oldest
// first (bodies that are not outcome events are skipped).
func (r *Reader) read(ctx context.Context, subj string, lo, hi uint64) ([]Stored, error) {
	cons, err := r.js.OrderedConsumer(ctx, r.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subj}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: lo,
	})
	if err != nil {
		return nil, fmt.Errorf("read outcomes: %w", err)
	}
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		return nil, nil
	}
	var out []Stored
	for {
		batch, err := cons.Fetch(int(min(hi-lo+1, 500)), jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			return nil, fmt.Errorf("read outcomes: %w", err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				continue
			}
			if meta.Sequence.Stream > hi {
				return out, nil
			}
			var ev Event
			if json.Unmarshal(msg.Data(), &ev) == nil && ev.Type == wire.OutcomeEventType {
				out = append(out, Stored{Event: ev, Seq: meta.Sequence.Stream})
			}
			if meta.Sequence.Stream == hi || meta.NumPending == 0 {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("read outcomes: %w", err)
		}
		if n == 0 || ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
}

// LastSeq is the stream's last sequence (0 when empty).
func (r *Reader) LastSeq(ctx context.Context) (uint64, error) {
	s, err := r.js.Stream(ctx, r.stream)
	if err != nil {
		return 0, fmt.Errorf("outcome stream %s: %w", r.stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// Each calls fn with every event matching f from f.Since (or from
// sequence fromSeq when Since is zero), oldest first. It returns after
// the event at untilSeq, or, with untilSeq 0, when ctx ends (follow).
func (r *Reader) Each(ctx context.Context, f Filter, fromSeq, untilSeq uint64, fn func(Stored) error) error {
	subj, err := subjectFilter(r.prefix, f.Handler)
	if err != nil {
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}}
	switch {
	case !f.Since.IsZero():
		since := f.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	case fromSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, fromSeq
	default:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	cons, err := r.js.OrderedConsumer(ctx, r.stream, cfg)
	if err != nil {
		return fmt.Errorf("read outcomes: %w", err)
	}
	if untilSeq > 0 {
		if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
			return nil
		}
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read outcomes: %w", err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("read outcomes: %w", err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			continue
		}
		if untilSeq > 0 && meta.Sequence.Stream > untilSeq {
			return nil
		}
		var ev Event
		if json.Unmarshal(msg.Data(), &ev) == nil && ev.Type == wire.OutcomeEventType && f.Match(&ev) {
			if err := fn(Stored{Event: ev, Seq: meta.Sequence.Stream}); err != nil {
				return err
			}
		}
		if untilSeq > 0 && (meta.Sequence.Stream >= untilSeq || meta.NumPending == 0) {
			return nil
		}
	}
}
