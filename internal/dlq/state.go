package dlq

import (
	"context"
	"fmt"
)

// State is the dead-letter stream's sequence range and letter count: what
// an index of the stream needs to notice letters added (LastSeq grew),
// aged out (FirstSeq moved) or deleted by someone else (Msgs differs).
type State struct {
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Msgs     uint64 `json:"msgs"`
}

// State reads the stream's current state (one server round trip).
func (s *Store) State(ctx context.Context) (State, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return State{}, fmt.Errorf("dead-letter stream %s: %w", s.cfg.Stream, err)
	}
	return State{FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq, Msgs: info.State.Msgs}, nil
}
