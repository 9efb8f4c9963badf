package console

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aweber-imbi/imbi-worker/internal/dlq"
)

// errNoDLQ: the worker has not opened the dead-letter stream yet.
var errNoDLQ = errors.New("the dead-letter stream is not open yet (the worker is starting)")

// errBadRequest marks a client error (400).
type errBadRequest struct{ msg string }

func (e errBadRequest) Error() string { return e.msg }

func badRequest(format string, a ...any) error { return errBadRequest{fmt.Sprintf(format, a...)} }

// MaxPageSize bounds ?limit= of the dead-letter list.
const MaxPageSize = 500

// DefaultPageSize is the list's page size without ?limit=.
const DefaultPageSize = 50

// DefaultReplayRate is the bulk replay rate (letters per second) when the
// request names none.
const DefaultReplayRate = 100.0

func splitMulti(vs []string) []string {
	var out []string
	for _, v := range vs {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// parseWhen reads an RFC 3339 time or an age before now ("90m", "6h").
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02T15:04", s); err == nil { // <input type=datetime-local>, read as UTC
		return t.UTC(), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time or an age like 90m or 6h", s)
}

// parseQuery reads a dead-letter filter from URL parameters: reason and
// handler (repeatable or comma-separated), chain_id, since, until, q.
func parseQuery(v url.Values, now time.Time) (Query, error) {
	q := Query{
		Reasons:  splitMulti(v["reason"]),
		Handlers: splitMulti(v["handler"]),
		ChainID:  strings.TrimSpace(v.Get("chain_id")),
		Q:        strings.TrimSpace(v.Get("q")),
	}
	var err error
	if q.Since, err = parseWhen(v.Get("since"), now); err != nil {
		return q, badRequest("since: %v", err)
	}
	if q.Until, err = parseWhen(v.Get("until"), now); err != nil {
		return q, badRequest("until: %v", err)
	}
	if err := q.Validate(); err != nil {
		return q, badRequest("%v", err)
	}
	return q, nil
}

func (c *Console) index() (*index, error) {
	ix := c.ix.Load()
	if ix == nil {
		return nil, errNoDLQ
	}
	return ix, nil
}

// LetterSummary is a letter in the list (no headers or body).
type LetterSummary struct {
	dlq.Letter
	ChainID string `json:"chain_id,omitempty"`
}

// Page is one page of the dead-letter list, newest first.
type Page struct {
	// Total is how many letters match the filter (all pages).
	Total    int             `json:"total"`
	Offset   int             `json:"offset"`
	Limit    int             `json:"limit"`
	Letters  []LetterSummary `json:"letters"`
	ByReason map[string]int  `json:"by_reason"`
}

func (c *Console) listLetters(ctx context.Context, q Query, offset, limit int) (Page, error) {
	ix, err := c.index()
	if err != nil {
		return Page{}, err
	}
	p := Page{Offset: offset, Limit: limit, Letters: []LetterSummary{}, ByReason: map[string]int{}}
	err = ix.scan(ctx, q, func(e *entry) bool {
		if p.Total >= offset && len(p.Letters) < limit {
			p.Letters = append(p.Letters, LetterSummary{Letter: e.l, ChainID: e.chainID})
		}
		p.Total++
		p.ByReason[e.l.Reason]++
		return true
	})
	return p, err
}

// LetterView is one letter, redacted as `dlq show` prints it.
type LetterView struct {
	dlq.View
	ChainID string `json:"chain_id,omitempty"`
}

func (c *Console) showLetter(ctx context.Context, seq uint64) (LetterView, error) {
	ix, err := c.index()
	if err != nil {
		return LetterView{}, err
	}
	l, err := ix.store.Get(ctx, seq)
	if err != nil {
		return LetterView{}, err
	}
	return LetterView{View: redact(l), ChainID: chainID(l)}, nil
}

// Bucket is one time bucket of Stats: letters per reason.
type Bucket struct {
	Start  time.Time      `json:"start"`
	Total  int            `json:"total"`
	Counts map[string]int `json:"counts"`
}

// Stats is dead letters over time, bucketed, by reason.
type Stats struct {
	Total     int            `json:"total"`
	Bucket    string         `json:"bucket"`
	Buckets   []Bucket       `json:"buckets"`
	ByReason  map[string]int `json:"by_reason"`
	ByHandler map[string]int `json:"by_handler"`
}

// maxBuckets bounds a stats answer.
const maxBuckets = 1000

func (c *Console) stats(ctx context.Context, q Query, bucket time.Duration) (Stats, error) {
	ix, err := c.index()
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Buckets: []Bucket{}, ByReason: map[string]int{}, ByHandler: map[string]int{}}
	var whens []time.Time
	var reasons []string
	err = ix.scan(ctx, q, func(e *entry) bool {
		st.Total++
		st.ByReason[e.l.Reason]++
		st.ByHandler[e.l.Handler]++
		whens = append(whens, e.l.When())
		reasons = append(reasons, e.l.Reason)
		return true
	})
	if err != nil {
		return st, err
	}
	from, to := q.Since, q.Until
	if to.IsZero() {
		to = c.cfg.Now().UTC()
	}
	for _, w := range whens {
		if from.IsZero() || w.Before(from) {
			from = w
		}
		if !w.Before(to) {
			to = w.Add(time.Nanosecond)
		}
	}
	if from.IsZero() {
		from = to.Add(-24 * time.Hour)
	}
	if bucket <= 0 {
		bucket = autoBucket(to.Sub(from))
	}
	start := from.Truncate(bucket)
	n := int(to.Sub(start)/bucket) + 1
	if n > maxBuckets {
		return st, badRequest("%d buckets of %s: more than %d; pass a larger bucket or a shorter range", n, bucket, maxBuckets)
	}
	st.Bucket = bucket.String()
	st.Buckets = make([]Bucket, n)
	for i := range st.Buckets {
		st.Buckets[i] = Bucket{Start: start.Add(time.Duration(i) * bucket), Counts: map[string]int{}}
	}
	for i, w := range whens {
		k := int(w.Sub(start) / bucket)
		if k >= 0 && k < n {
			st.Buckets[k].Total++
			st.Buckets[k].Counts[reasons[i]]++
		}
	}
	return st, nil
}

// autoBucket picks a round bucket giving at most 48 bars.
func autoBucket(span time.Duration) time.Duration {
	for _, b := range []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour} {
		if span/b < 48 {
			return b
		}
	}
	return 30 * 24 * time.Hour
}

// replayOne replays one letter now.
func (c *Console) replayOne(ctx context.Context, seq uint64) (dlq.Replayed, error) {
	ix, err := c.index()
	if err != nil {
		return dlq.Replayed{}, err
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	l, err := ix.store.Get(ctx, seq)
	if errors.Is(err, dlq.ErrNotFound) {
		ix.remove(seq)
	}
	if err != nil {
		return dlq.Replayed{}, err
	}
	r, err := ix.store.Replay(ctx, l, false)
	if r.Deleted {
		ix.remove(seq)
	}
	return r, err
}

// deleteOne deletes one letter.
func (c *Console) deleteOne(ctx context.Context, seq uint64) error {
	ix, err := c.index()
	if err != nil {
		return err
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	err = ix.store.Delete(ctx, seq)
	if err == nil || errors.Is(err, dlq.ErrNotFound) {
		ix.remove(seq)
	}
	return err
}

// BulkRequest is the body of bulk replay and purge: a filter (All must be
// true to select every letter, as --all in the CLI), a dry-run switch and,
// for replay, a rate in letters per second (absent: DefaultReplayRate;
// 0: as fast as acks come back).
type BulkRequest struct {
	Query
	All    bool     `json:"all,omitempty"`
	DryRun bool     `json:"dry_run,omitempty"`
	Rate   *float64 `json:"rate,omitempty"`
}

func (b BulkRequest) check() error {
	if err := b.Validate(); err != nil {
		return badRequest("%v", err)
	}
	if b.IsZero() && !b.All {
		return badRequest("no filter given: set \"all\": true to select every dead letter")
	}
	if !b.IsZero() && b.All {
		return badRequest("\"all\" cannot be combined with filters")
	}
	if b.Rate != nil && (*b.Rate < 0 || *b.Rate > 10000) {
		return badRequest("rate must be between 0 (unlimited) and 10000 letters per second")
	}
	return nil
}

// BulkResult answers a dry run or a purge.
type BulkResult struct {
	Matched int  `json:"matched"`
	Purged  int  `json:"purged,omitempty"`
	DryRun  bool `json:"dry_run,omitempty"`
}

func (c *Console) count(ctx context.Context, q Query) (int, error) {
	ix, err := c.index()
	if err != nil {
		return 0, err
	}
	n := 0
	err = ix.scan(ctx, q, func(*entry) bool { n++; return true })
	return n, err
}

// startReplay takes the filter's full match set now and replays it in the
// background; letters dead-lettered again meanwhile are not picked up.
func (c *Console) startReplay(ctx context.Context, b BulkRequest) (JobStatus, error) {
	ix, err := c.index()
	if err != nil {
		return JobStatus{}, err
	}
	seqs, err := ix.seqs(ctx, b.Query)
	if err != nil {
		return JobStatus{}, err
	}
	rate := DefaultReplayRate
	if b.Rate != nil {
		rate = *b.Rate
	}
	return c.jobs.start(ix, b.Query, seqs, rate, c.cfg.Logger), nil
}

func (c *Console) purge(ctx context.Context, q Query) (int, error) {
	ix, err := c.index()
	if err != nil {
		return 0, err
	}
	if q.IsZero() {
		// Everything: one server call instead of a delete per letter.
		ix.mu.Lock()
		defer ix.mu.Unlock()
		n, err := ix.store.Purge(ctx, dlq.Filter{})
		if err != nil {
			return n, err
		}
		ix.built = false // re-read what is left (letters stored meanwhile)
		return n, ix.sync(ctx)
	}
	seqs, err := ix.seqs(ctx, q)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, seq := range seqs {
		ix.mu.Lock()
		err := ix.store.Delete(ctx, seq)
		if err == nil || errors.Is(err, dlq.ErrNotFound) {
			ix.remove(seq)
		}
		ix.mu.Unlock()
		switch {
		case err == nil:
			n++
		case errors.Is(err, dlq.ErrNotFound):
		default:
			return n, err
		}
	}
	return n, nil
}

// MaxOutcomes bounds ?limit= of the outcomes list.
const MaxOutcomes = 1000

func parseOutcomeFilter(v url.Values, now time.Time) (OutcomeFilter, error) {
	f := OutcomeFilter{Handler: v.Get("handler"), Status: v.Get("status"), Project: v.Get("project"), Limit: 100}
	if f.Status != "" && !slices.Contains(OutcomeStatuses, f.Status) {
		return f, badRequest("unknown status %q (known: %s)", f.Status, strings.Join(OutcomeStatuses, ", "))
	}
	var err error
	if f.Since, err = parseWhen(v.Get("since"), now); err != nil {
		return f, badRequest("since: %v", err)
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxOutcomes {
			return f, badRequest("limit must be 1..%d", MaxOutcomes)
		}
		f.Limit = n
	}
	return f, nil
}

func (c *Console) outcomes(ctx context.Context, f OutcomeFilter) ([]Outcome, error) {
	r := c.outcomeReader()
	if r == nil {
		return nil, ErrNotEnabled
	}
	out, err := r.Recent(ctx, f)
	if out == nil {
		out = []Outcome{}
	}
	return out, err
}

// LaneRequest is the body of lane pause and resume.
type LaneRequest struct {
	Plugin   string `json:"plugin"`
	PluginID string `json:"plugin_id,omitempty"`
	// Until (pause only): RFC 3339 time or a duration from now ("2h");
	// empty: until resumed.
	Until  string `json:"until,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// laneBy is what lane pauses from the console record as who set them.
const laneBy = "console"

func (c *Console) pauseLane(ctx context.Context, lr LaneRequest) error {
	ls := c.laneStore()
	if ls == nil {
		return ErrNotEnabled
	}
	if strings.TrimSpace(lr.Plugin) == "" {
		return badRequest("plugin is required")
	}
	p := PauseRequest{Lane: LaneKey{Plugin: lr.Plugin, PluginID: lr.PluginID}, Reason: lr.Reason, By: laneBy}
	if lr.Until != "" {
		now := c.cfg.Now()
		if d, err := time.ParseDuration(lr.Until); err == nil && d > 0 {
			p.Until = now.Add(d).UTC()
		} else if t, err := time.Parse(time.RFC3339, lr.Until); err == nil && t.After(now) {
			p.Until = t.UTC()
		} else {
			return badRequest("until must be a future RFC 3339 time or a positive duration like 2h")
		}
	}
	return ls.Pause(ctx, p)
}

func (c *Console) resumeLane(ctx context.Context, lr LaneRequest) error {
	ls := c.laneStore()
	if ls == nil {
		return ErrNotEnabled
	}
	if strings.TrimSpace(lr.Plugin) == "" {
		return badRequest("plugin is required")
	}
	return ls.Resume(ctx, LaneKey{Plugin: lr.Plugin, PluginID: lr.PluginID}, laneBy)
}

func (c *Console) lanes(ctx context.Context) ([]Lane, error) {
	ls := c.laneStore()
	if ls == nil {
		return nil, ErrNotEnabled
	}
	out, err := ls.List(ctx)
	if out == nil {
		out = []Lane{}
	}
	return out, err
}

func (c *Console) actions() any {
	if c.cfg.Actions == nil {
		return map[string]any{"plugins": []any{}}
	}
	return c.cfg.Actions()
}
