// Package dlq reads, summarises, replays and purges the dead letters of
// wire-contract §5: the original message, byte for byte, in the
// dead-letter stream (IMBI_ACTIONS_DLQ, limits retention) with the
// Imbi-Dlq-* headers the worker added. It is what `imbi-worker dlq` runs.
//
// Letters are read with an ordered consumer (nothing is acked or changed by
// reading) or fetched by stream sequence; they are only removed by Replay,
// after the republish is acknowledged, and by Purge.
package dlq

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/aweber-imbi/imbi-worker/internal/deadletter"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// Letter is one dead letter with its Imbi-Dlq-* headers decoded.
type Letter struct {
	// Seq is the sequence in the dead-letter stream (the handle for show,
	// replay --seq and purge --seq).
	Seq uint64 `json:"seq"`
	// Subject is the dead-letter subject (imbi.dlq.actions.<plugin>.<action>).
	Subject string `json:"subject"`
	// Stored is when the dead-letter stream stored it.
	Stored time.Time `json:"stored"`
	// Handler is <plugin>#<action> from the dead-letter subject, or
	// "_invalid" for bytes that were not a CloudEvent.
	Handler string `json:"handler"`
	// EventID is the CloudEvent id when the body or headers carry one.
	EventID string `json:"event_id,omitempty"`

	Reason          string    `json:"reason"`
	LastReason      string    `json:"last_reason,omitempty"`
	Error           string    `json:"error,omitempty"`
	Attempts        int       `json:"attempts"`
	OriginalSubject string    `json:"original_subject"`
	OriginalSeq     uint64    `json:"original_seq,omitempty"`
	FirstReceived   time.Time `json:"first_received,omitzero"`
	DeadAt          time.Time `json:"dead_at,omitzero"`
	Worker          string    `json:"worker,omitempty"`
	// Replays is how often this event was replayed before it died this
	// time, read from its Nats-Msg-Id (<ce id>.replay.<n>): the worker
	// keeps the original headers, so no extra header is needed.
	Replays int `json:"replays,omitempty"`
	// ChainID, ChainPosition and ChainContinued are an ordered chain's
	// step (Imbi-Dlq-Chain-*, wire-contract §A); ChainPosition is nil
	// outside a chain. ChainContinued: the next step went out before this
	// one died (on_failure continue).
	ChainID        string `json:"chain_id,omitempty"`
	ChainPosition  *int   `json:"chain_position,omitempty"`
	ChainContinued bool   `json:"chain_continued,omitempty"`

	// Header and Data are the stored message; never print them without
	// Redacted (they may hold what the gateway failed to redact).
	Header nats.Header `json:"-"`
	Data   []byte      `json:"-"`
}

// When is the letter's time for --since/--until: Imbi-Dlq-Dead-At, or the
// stream time when the header is missing or unreadable.
func (l Letter) When() time.Time {
	if !l.DeadAt.IsZero() {
		return l.DeadAt
	}
	return l.Stored
}

// headerGet looks a header up case-insensitively: the worker writes the
// canonical spelling, but a letter may have passed through other tools.
func headerGet(h nats.Header, name string) string { return deadletter.Get(h, name) }

// NewLetter decodes a stored dead letter. It never fails: a letter with a
// missing or malformed header is still listed, with that field empty.
func NewLetter(prefix string, seq uint64, subject string, stored time.Time, h nats.Header, data []byte) Letter {
	dh := deadletter.Parse(h)
	l := Letter{
		Seq: seq, Subject: subject, Stored: stored.UTC(), Header: h, Data: data,
		Handler:         handlerFromSubject(prefix, subject),
		Reason:          dh.Reason,
		LastReason:      dh.LastReason,
		Error:           dh.Error,
		Attempts:        dh.Attempts,
		OriginalSubject: dh.OriginalSubject,
		OriginalSeq:     dh.OriginalSeq,
		FirstReceived:   dh.FirstReceived,
		DeadAt:          dh.DeadAt,
		Worker:          dh.Worker,
	}
	l.EventID = eventID(h, data)
	if l.ChainID = headerGet(h, wire.DLQChainID); l.ChainID != "" {
		if p, err := strconv.Atoi(headerGet(h, wire.DLQChainPosition)); err == nil {
			l.ChainPosition = &p
		}
		l.ChainContinued = headerGet(h, wire.DLQChainContinued) == "true"
	}
	_, l.Replays = splitReplayID(headerGet(h, wire.HeaderMsgID))
	return l
}

// replayInfix joins an id and a replay number in a replayed message's
// Nats-Msg-Id (wire-contract §5).
const replayInfix = ".replay."

// splitReplayID splits "<base>.replay.<n>" into base and n; any other id
// is its own base with n = 0.
func splitReplayID(msgID string) (string, int) {
	i := strings.LastIndex(msgID, replayInfix)
	if i < 0 {
		return msgID, 0
	}
	n, err := strconv.Atoi(msgID[i+len(replayInfix):])
	if err != nil || n <= 0 {
		return msgID, 0
	}
	return msgID[:i], n
}

// handlerFromSubject maps imbi.dlq.actions.<plugin>.<action> back to
// <plugin>#<action>.
func handlerFromSubject(prefix, subject string) string {
	rest, ok := strings.CutPrefix(subject, prefix+".")
	if !ok {
		return ""
	}
	if plugin, action, ok := strings.Cut(rest, "."); ok {
		return plugin + "#" + action
	}
	return rest // "_invalid"
}

// eventID finds the CloudEvent id: the binary-mode ce-id header
// (percent-decoded), else the structured body's "id", else nothing.
func eventID(h nats.Header, data []byte) string {
	if v := headerGet(h, wire.CEHeaderPrefix+"id"); v != "" {
		if d, err := url.PathUnescape(v); err == nil {
			return d
		}
		return v
	}
	var probe struct {
		SpecVersion string `json:"specversion"`
		ID          any    `json:"id"`
	}
	if json.Unmarshal(data, &probe) != nil || probe.SpecVersion == "" {
		return ""
	}
	if s, ok := probe.ID.(string); ok {
		return s
	}
	return ""
}
