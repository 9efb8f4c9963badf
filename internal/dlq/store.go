package dlq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// ErrNotFound: no letter has that sequence (never stored, replayed,
// purged or aged out).
var ErrNotFound = errors.New("dead letter not found")

// Config names the dead-letter stream. Zero fields take the
// wire-contract defaults written beside them.
type Config struct {
	// Stream is the dead-letter stream (IMBI_ACTIONS_DLQ).
	Stream string
	// Prefix is the dead-letter subject prefix (imbi.dlq.actions).
	Prefix string
	// WorkPrefix is the work subject prefix (imbi.actions); replay refuses
	// to publish anywhere else.
	WorkPrefix string
}

func (c *Config) setDefaults() {
	if c.Stream == "" {
		c.Stream = wire.DefaultDLQStream
	}
	if c.Prefix == "" {
		c.Prefix = wire.DefaultDLQPrefix
	}
	if c.WorkPrefix == "" {
		c.WorkPrefix = wire.DefaultSubjectPrefix
	}
}

// Store is the dead-letter stream.
type Store struct {
	cfg    Config
	js     jetstream.JetStream
	stream jetstream.Stream
}

// Open finds the dead-letter stream.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	cfg.setDefaults()
	st, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", cfg.Stream, err)
	}
	return &Store{cfg: cfg, js: js, stream: st}, nil
}

// Get fetches one letter by sequence (a direct read: no consumer).
func (s *Store) Get(ctx context.Context, seq uint64) (Letter, error) {
	raw, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return Letter{}, fmt.Errorf("seq %d: %w", seq, ErrNotFound)
		}
		return Letter{}, fmt.Errorf("seq %d: %w", seq, err)
	}
	return NewLetter(s.cfg.Prefix, raw.Sequence, raw.Subject, raw.Time, raw.Header, raw.Data), nil
}

// Each calls fn for every letter f selects, oldest first. It reads a
// snapshot: letters stored after Each started are not visited, so a replay
// that dead-letters again cannot loop. Returning an error from fn stops
// the walk and Each returns it.
func (s *Store) Each(ctx context.Context, f Filter, fn func(Letter) error) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if f.Seq != 0 {
		l, err := s.Get(ctx, f.Seq)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if f.Match(l) {
			return fn(l)
		}
		return nil
	}

	info, err := s.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("dead-letter stream %s: %w", s.cfg.Stream, err)
	}
	last := info.State.LastSeq
	if end := f.endSeq(); end != 0 && end < last {
		last = end
	}
	if info.State.Msgs == 0 || last < max(f.startSeq(), info.State.FirstSeq) {
		return nil
	}

	cc := jetstream.OrderedConsumerConfig{FilterSubjects: f.subjects(s.cfg.Prefix)}
	switch {
	case f.startSeq() > 0:
		cc.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cc.OptStartSeq = f.startSeq()
	case !f.Since.IsZero():
		// Stream time is close to Imbi-Dlq-Dead-At; start a little
		// earlier so clock skew between worker and server loses nothing.
		cc.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		start := f.Since.Add(-10 * time.Minute)
		cc.OptStartTime = &start
	}
	cons, err := s.stream.OrderedConsumer(ctx, cc)
	if err != nil {
		return fmt.Errorf("read dead letters: %w", err)
	}
	cinfo, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("read dead letters: %w", err)
	}
	if cinfo.NumPending == 0 {
		return nil
	}

	// FetchNoWait returns at once with what the server has: an empty batch
	// means the rest of the snapshot was deleted meanwhile (replayed,
	// purged, aged out), never a wait for letters that will not come.
	matched := 0
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return fmt.Errorf("read dead letters: %w", err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			meta, err := msg.Metadata()
			if err != nil {
				return fmt.Errorf("read dead letters: %w", err)
			}
			seq := meta.Sequence.Stream
			if seq > last {
				return nil
			}
			l := NewLetter(s.cfg.Prefix, seq, msg.Subject(), meta.Timestamp, msg.Headers(), msg.Data())
			if f.Match(l) {
				if err := fn(l); err != nil {
					return err
				}
				matched++
				if f.Limit > 0 && matched >= f.Limit {
					return nil
				}
			}
			if seq == last || meta.NumPending == 0 {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("read dead letters: %w", err)
		}
		if got == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// List returns the letters f selects, oldest first.
func (s *Store) List(ctx context.Context, f Filter) ([]Letter, error) {
	var out []Letter
	err := s.Each(ctx, f, func(l Letter) error {
		out = append(out, l)
		return nil
	})
	return out, err
}

// Delete removes one letter.
func (s *Store) Delete(ctx context.Context, seq uint64) error {
	if err := s.stream.DeleteMsg(ctx, seq); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
			return fmt.Errorf("seq %d: %w", seq, ErrNotFound)
		}
		return fmt.Errorf("delete seq %d: %w", seq, err)
	}
	return nil
}

// Purge removes the letters f selects and returns how many. The zero
// filter purges the whole stream in one server call; otherwise letters are
// deleted one by one.
func (s *Store) Purge(ctx context.Context, f Filter) (int, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	if f.IsZero() {
		info, err := s.stream.Info(ctx)
		if err != nil {
			return 0, err
		}
		if err := s.stream.Purge(ctx); err != nil {
			return 0, fmt.Errorf("purge %s: %w", s.cfg.Stream, err)
		}
		return int(info.State.Msgs), nil
	}
	var seqs []uint64
	if err := s.Each(ctx, f, func(l Letter) error {
		seqs = append(seqs, l.Seq)
		return nil
	}); err != nil {
		return 0, err
	}
	n := 0
	for _, seq := range seqs {
		if err := s.Delete(ctx, seq); err != nil {
			if errors.Is(err, ErrNotFound) {
				continue // gone meanwhile (replayed or aged out)
			}
			return n, err
		}
		n++
	}
	return n, nil
}
