package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aweber-imbi/imbi-worker/internal/dlq"
)

// HeaderChainID is the dead-letter header that will carry data.chain.id
// (wire-contract v1.1 §A); until the worker writes it, the body's
// data.chain.id is used.
const HeaderChainID = "Imbi-Dlq-Chain-Id"

// entry is one indexed letter: the decoded headers (no body) plus what the
// filters need, so a query never reads the stream.
type entry struct {
	l       dlq.Letter // Header and Data are nil
	chainID string
	// text is the redacted body, lower-cased, for q= searches: a secret
	// that redaction hides is never searchable.
	text string
	gone bool
}

// index is an in-memory index of the dead-letter stream, built once from
// the stream and kept current by reading only letters past the last
// indexed sequence. Letters deleted by someone else (the CLI, max age) are
// noticed from the stream's state: FirstSeq moving drops older entries,
// and a count that still disagrees rebuilds the index.
type index struct {
	store *dlq.Store

	mu      sync.Mutex
	entries []*entry // ascending seq; tombstoned entries have gone=true
	live    int
	last    uint64 // highest sequence read
	built   bool
	reuse   map[uint64]*entry // during rebuild: the previous entries
}

func newIndex(store *dlq.Store) *index { return &index{store: store} }

// warm builds the index ahead of the first request.
func (ix *index) warm(ctx context.Context) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.sync(ctx)
}

// MaxSearchText bounds how much of each redacted body the index keeps for
// text search (q=), so memory stays proportional to the letter count and
// not to the largest bodies.
const MaxSearchText = 16 << 10

func indexEntry(l dlq.Letter) *entry {
	e := &entry{chainID: chainID(l)}
	v := redact(l)
	text := v.BodyText
	if len(v.Body) > 0 {
		text = string(v.Body)
	}
	if len(text) > MaxSearchText {
		text = text[:MaxSearchText]
	}
	e.text = strings.ToLower(text)
	l.Header, l.Data = nil, nil
	e.l = l
	return e
}

// chainID is the letter's Imbi-Dlq-Chain-Id header, else data.chain.id of
// a structured CloudEvent body.
func chainID(l dlq.Letter) string {
	if v := l.Header.Get(HeaderChainID); v != "" {
		return v
	}
	if !bytes.Contains(l.Data, []byte(`"chain"`)) {
		return ""
	}
	var probe struct {
		Data struct {
			Chain struct {
				ID any `json:"id"`
			} `json:"chain"`
		} `json:"data"`
	}
	if json.Unmarshal(l.Data, &probe) != nil {
		return ""
	}
	if s, ok := probe.Data.Chain.ID.(string); ok {
		return s
	}
	return ""
}

// sync brings the index up to the stream's current state. Callers hold mu.
func (ix *index) sync(ctx context.Context) error {
	st, err := ix.store.State(ctx)
	if err != nil {
		return err
	}
	if !ix.built || st.LastSeq < ix.last {
		// First use, or the stream was recreated: read it all.
		return ix.rebuild(ctx, st)
	}
	// Aged out or purged from the front.
	cut, _ := slices.BinarySearchFunc(ix.entries, st.FirstSeq, func(e *entry, seq uint64) int {
		return cmpSeq(e.l.Seq, seq)
	})
	for _, e := range ix.entries[:cut] {
		if !e.gone {
			ix.live--
		}
	}
	ix.entries = ix.entries[cut:]
	if st.LastSeq > ix.last {
		if err := ix.readFrom(ctx, ix.last+1, st.LastSeq); err != nil {
			return err
		}
	}
	if uint64(ix.live) != st.Msgs {
		return ix.rebuild(ctx, st)
	}
	ix.compact()
	return nil
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// rebuild reads the whole stream again. Entries of letters still there
// are reused (no second redaction); only the stream is read.
func (ix *index) rebuild(ctx context.Context, st dlq.State) error {
	old := make(map[uint64]*entry, ix.live)
	for _, e := range ix.entries {
		if !e.gone {
			old[e.l.Seq] = e
		}
	}
	ix.entries, ix.live, ix.last, ix.built = nil, 0, 0, false
	ix.reuse = old
	defer func() { ix.reuse = nil }()
	if st.Msgs > 0 {
		if err := ix.readFrom(ctx, st.FirstSeq, st.LastSeq); err != nil {
			return err
		}
	}
	ix.last = max(ix.last, st.LastSeq)
	ix.built = true
	return nil
}

func (ix *index) readFrom(ctx context.Context, from, to uint64) error {
	err := ix.store.Each(ctx, dlq.Filter{FromSeq: from, ToSeq: to}, func(l dlq.Letter) error {
		e := ix.reuse[l.Seq]
		if e == nil || e.l.Subject != l.Subject {
			e = indexEntry(l)
		}
		ix.entries = append(ix.entries, e)
		ix.live++
		return nil
	})
	if err != nil {
		return fmt.Errorf("index dead letters: %w", err)
	}
	ix.last = max(ix.last, to)
	return nil
}

// compact drops tombstones once they are a quarter of the slice.
func (ix *index) compact() {
	if len(ix.entries)-ix.live < len(ix.entries)/4+64 {
		return
	}
	ix.entries = slices.DeleteFunc(ix.entries, func(e *entry) bool { return e.gone })
}

// remove tombstones seq (after the console deleted it). Callers hold mu.
func (ix *index) remove(seq uint64) {
	i, ok := slices.BinarySearchFunc(ix.entries, seq, func(e *entry, seq uint64) int { return cmpSeq(e.l.Seq, seq) })
	if ok && !ix.entries[i].gone {
		ix.entries[i].gone = true
		ix.live--
	}
}

// Query is a dead-letter filter of the API and the console.
type Query struct {
	Reasons  []string  `json:"reason,omitempty"`
	Handlers []string  `json:"handler,omitempty"`
	ChainID  string    `json:"chain_id,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	Until    time.Time `json:"until,omitzero"`
	// Q is a case-insensitive substring of the redacted body.
	Q string `json:"q,omitempty"`
}

// IsZero reports whether q selects every letter.
func (q Query) IsZero() bool {
	return len(q.Reasons) == 0 && len(q.Handlers) == 0 && q.ChainID == "" && q.Since.IsZero() && q.Until.IsZero() && q.Q == ""
}

func (q Query) dlqFilter() dlq.Filter {
	return dlq.Filter{Reasons: q.Reasons, Handlers: q.Handlers, Since: q.Since, Until: q.Until}
}

// Validate uses the CLI's rules (known reasons, handler syntax, time order).
func (q Query) Validate() error {
	return q.dlqFilter().Validate()
}

// matcher is a compiled Query.
type matcher struct {
	f     dlq.Filter
	chain string
	q     string
}

func (q Query) matcher() matcher {
	return matcher{f: q.dlqFilter(), chain: q.ChainID, q: strings.ToLower(q.Q)}
}

func (m *matcher) match(e *entry) bool {
	if e.gone {
		return false
	}
	if m.chain != "" && e.chainID != m.chain {
		return false
	}
	if !m.f.Match(e.l) {
		return false
	}
	return m.q == "" || strings.Contains(e.text, m.q)
}

// errIndex wraps a failure to read the stream.
var errIndex = errors.New("dead-letter index")

// scan syncs the index and calls fn for every match, newest first, with mu
// held; fn returns false to stop.
func (ix *index) scan(ctx context.Context, q Query, fn func(e *entry) bool) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if err := ix.sync(ctx); err != nil {
		return fmt.Errorf("%w: %w", errIndex, err)
	}
	m := q.matcher()
	for i := len(ix.entries) - 1; i >= 0; i-- {
		e := ix.entries[i]
		if m.match(e) && !fn(e) {
			return nil
		}
	}
	return nil
}

// seqs is the full match set of q, oldest first (the order replay and
// purge work in).
func (ix *index) seqs(ctx context.Context, q Query) ([]uint64, error) {
	var out []uint64
	err := ix.scan(ctx, q, func(e *entry) bool {
		out = append(out, e.l.Seq)
		return true
	})
	slices.Reverse(out)
	return out, err
}
