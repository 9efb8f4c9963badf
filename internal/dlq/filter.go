package dlq

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// Filter selects letters. Every set field must match (AND); within Reasons
// and Handlers any entry may match (OR). The zero Filter matches all.
type Filter struct {
	// Reasons are reason codes (Imbi-Dlq-Reason); a letter whose
	// Imbi-Dlq-Last-Reason matches also matches, so "timeout" finds
	// timeouts that ended as max_attempts.
	Reasons []string
	// Handlers are "<plugin>#<action>", a bare "<plugin>" (all its
	// actions) or "_invalid".
	Handlers []string
	// Since and Until bound Letter.When (inclusive, exclusive).
	Since, Until time.Time
	// Seq selects one letter; FromSeq and ToSeq bound the sequence
	// (inclusive). Zero means unbounded.
	Seq, FromSeq, ToSeq uint64
	// Limit stops after that many matches (0: no limit).
	Limit int
	// ChainID selects the steps of one ordered chain (Imbi-Dlq-Chain-Id).
	ChainID string
}

// IsZero reports whether the filter selects every letter.
func (f Filter) IsZero() bool {
	return len(f.Reasons) == 0 && len(f.Handlers) == 0 && f.Since.IsZero() && f.Until.IsZero() &&
		f.Seq == 0 && f.FromSeq == 0 && f.ToSeq == 0 && f.Limit == 0 && f.ChainID == ""
}

// Validate rejects a filter that can only be a typo.
func (f Filter) Validate() error {
	for _, r := range f.Reasons {
		if !slices.Contains(wire.Reasons, wire.Reason(r)) && wire.Reason(r) != wire.ReasonUnsettled {
			return fmt.Errorf("unknown reason %q (known: %s)", r, knownReasons())
		}
	}
	for _, h := range f.Handlers {
		if _, err := handlerSubjectToken(h); err != nil {
			return err
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return fmt.Errorf("--until (%s) must be after --since (%s)", f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))
	}
	if f.FromSeq != 0 && f.ToSeq != 0 && f.ToSeq < f.FromSeq {
		return fmt.Errorf("--to-seq (%d) is before --from-seq (%d)", f.ToSeq, f.FromSeq)
	}
	if f.Limit < 0 {
		return fmt.Errorf("limit must not be negative")
	}
	return nil
}

func knownReasons() string {
	names := make([]string, 0, len(wire.Reasons))
	for _, r := range wire.Reasons {
		names = append(names, string(r))
	}
	return strings.Join(names, ", ")
}

// handlerSubjectToken turns a handler filter into the subject tokens after
// the dead-letter prefix: "github.create_issue", "github.*" or "_invalid".
func handlerSubjectToken(h string) (string, error) {
	if h == wire.InvalidToken {
		return h, nil
	}
	if !strings.ContainsAny(h, "#:") {
		if _, err := wire.ParseHandler(h + "#x"); err != nil {
			return "", fmt.Errorf("handler filter %q is neither <plugin>#<action>, <plugin> nor %s", h, wire.InvalidToken)
		}
		return h + ".*", nil
	}
	parsed, err := wire.ParseHandler(h)
	if err != nil {
		return "", fmt.Errorf("handler filter %q is neither <plugin>#<action>, <plugin> nor %s", h, wire.InvalidToken)
	}
	return parsed.Plugin + "." + parsed.Action, nil
}

// subjects are the server-side subject filters of f (none: all). The
// server refuses overlapping filters, so a handler whose plugin is also
// asked for as a whole ("github" and "github#create_issue") is dropped.
func (f Filter) subjects(prefix string) []string {
	wholePlugins := map[string]bool{}
	toks := make([]string, 0, len(f.Handlers))
	for _, h := range f.Handlers {
		tok, err := handlerSubjectToken(h)
		if err != nil {
			continue // Validate reports it
		}
		if plugin, ok := strings.CutSuffix(tok, ".*"); ok {
			wholePlugins[plugin] = true
		}
		toks = append(toks, tok)
	}
	out := make([]string, 0, len(toks))
	for _, tok := range toks {
		plugin, action, _ := strings.Cut(tok, ".")
		if action != "*" && wholePlugins[plugin] {
			continue
		}
		out = append(out, prefix+"."+tok)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// startSeq is the first sequence worth reading.
func (f Filter) startSeq() uint64 {
	if f.Seq != 0 {
		return f.Seq
	}
	return f.FromSeq
}

// endSeq is the last sequence worth reading (0: unbounded).
func (f Filter) endSeq() uint64 {
	if f.Seq != 0 {
		return f.Seq
	}
	return f.ToSeq
}

// Match reports whether l is selected (Limit is applied by the reader).
func (f Filter) Match(l Letter) bool {
	if f.Seq != 0 && l.Seq != f.Seq {
		return false
	}
	if f.FromSeq != 0 && l.Seq < f.FromSeq {
		return false
	}
	if f.ToSeq != 0 && l.Seq > f.ToSeq {
		return false
	}
	if len(f.Reasons) > 0 && !slices.Contains(f.Reasons, l.Reason) &&
		(l.LastReason == "" || !slices.Contains(f.Reasons, l.LastReason)) {
		return false
	}
	if f.ChainID != "" && l.ChainID != f.ChainID {
		return false
	}
	if len(f.Handlers) > 0 && !slices.ContainsFunc(f.Handlers, func(h string) bool { return handlerMatches(h, l.Handler) }) {
		return false
	}
	when := l.When()
	if !f.Since.IsZero() && when.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !when.Before(f.Until) {
		return false
	}
	return true
}

func handlerMatches(filter, handler string) bool {
	if filter == handler {
		return true
	}
	if !strings.ContainsAny(filter, "#:") {
		plugin, _, _ := strings.Cut(handler, "#")
		return filter == plugin && filter != handler
	}
	parsed, err := wire.ParseHandler(filter) // legacy ':' accepted
	return err == nil && parsed.String() == handler
}
