package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/aweber-imbi/imbi-worker/internal/outcomes"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// outcomesOptions are the flags of `outcomes tail`.
type outcomesOptions struct {
	nats    toolNATSFlags
	stream  string
	prefix  string
	handler string
	status  string
	project string
	since   string
	limit   int
	jsonOut bool
	follow  bool
}

func newOutcomesCmd() *cobra.Command {
	var o outcomesOptions
	cmd := &cobra.Command{
		Use:   "outcomes",
		Short: "Read outcome events (one per settle decision)",
		Long: `Outcome events are kept in the outcome stream (IMBI_OUTCOMES, wire-contract §C):
one CloudEvent per settle decision — succeeded, retrying, dead_lettered,
deduplicated or paused — with the handler, reason, redacted error and duration.`,
	}
	pf := cmd.PersistentFlags()
	o.nats.register(pf)
	pf.StringVar(&o.stream, "outcomes-stream", wire.DefaultOutcomesStream, "outcome event stream name")
	pf.StringVar(&o.prefix, "outcomes-prefix", wire.DefaultOutcomesPrefix, "outcome subject prefix")

	tail := &cobra.Command{
		Use:   "tail",
		Short: "Print recent outcome events, oldest first; --follow keeps printing new ones",
		Long: `Without --since: the last --limit events that match the filters. With --since:
every matching event from then on. --follow then waits for new events until
interrupted. Text output escapes control characters; --json prints one JSON
event (the CloudEvent as stored) per line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.tail(cmd) },
	}
	fs := tail.Flags()
	fs.StringVar(&o.handler, "handler", "", "only this handler: <plugin>#<action>, <plugin> or _invalid")
	fs.StringVar(&o.status, "status", "", "only this status: succeeded, retrying, dead_lettered, deduplicated or paused")
	fs.StringVar(&o.project, "project", "", "only this project (id or slug)")
	fs.StringVar(&o.since, "since", "", "from this time on: RFC 3339 time, date (2006-01-02) or age (90m, 6h, 2d)")
	fs.IntVar(&o.limit, "limit", 20, "without --since: how many recent events (1..1000)")
	fs.BoolVar(&o.jsonOut, "json", false, "print one JSON event per line")
	fs.BoolVar(&o.follow, "follow", false, "keep printing new events until interrupted")
	markCommandLineOnly(fs, "handler", "status", "project", "since", "limit", "json", "follow")
	cmd.AddCommand(tail)
	return cmd
}

func (o *outcomesOptions) tail(cmd *cobra.Command) error {
	f := outcomes.Filter{Handler: o.handler, Status: o.status, Project: o.project, Limit: o.limit}
	if err := f.Validate(); err != nil {
		return err
	}
	if o.limit < 1 || o.limit > outcomes.MaxLimit {
		return fmt.Errorf("--limit must be 1..%d", outcomes.MaxLimit)
	}
	var err error
	if f.Since, err = parseWhen(o.since, time.Now()); err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	sess, err := o.nats.connect("outcomes")
	if err != nil {
		return err
	}
	defer sess.Close()
	js, err := jetstream.New(sess.NC, jetstream.WithDefaultTimeout(o.nats.timeout))
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	r := outcomes.NewReader(js, o.stream, o.prefix)
	last, err := r.LastSeq(ctx)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	emit := func(s outcomes.Stored) error { return o.print(out, &s.Event) }
	if f.Since.IsZero() {
		recent, err := r.Recent(ctx, f)
		if err != nil {
			return err
		}
		slices.Reverse(recent)
		for _, s := range recent {
			if err := emit(s); err != nil {
				return err
			}
		}
	} else if last > 0 {
		if err := r.Each(ctx, f, 0, last, emit); err != nil {
			return err
		}
	}
	if !o.follow {
		return nil
	}
	f.Since = time.Time{}
	err = r.Each(ctx, f, last+1, 0, emit)
	if ctx.Err() != nil {
		return nil // interrupted: the normal end of --follow
	}
	return err
}

// print writes one event: JSON as stored, or a line of text with every
// message-derived value made terminal-safe.
func (o *outcomesOptions) print(w io.Writer, ev *outcomes.Event) error {
	if o.jsonOut {
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = w.Write(append(jsonTermSafe(b), '\n'))
		return err
	}
	d := &ev.Data
	line := ev.Time.UTC().Format(time.RFC3339) + "  " + termSafe(string(d.Status))
	if d.Reason != "" {
		line += "(" + termSafe(string(d.Reason)) + ")"
	}
	line += "  " + termSafe(d.Handler) + "  attempt " + strconv.Itoa(d.Attempt) + "  " + strconv.FormatInt(d.DurationMS, 10) + " ms  " + termSafe(ev.ID)
	if d.Context.ProjectSlug != "" {
		line += "  project " + termSafe(d.Context.ProjectSlug)
	}
	if d.NextAttemptAt != nil {
		line += "  next " + d.NextAttemptAt.UTC().Format(time.RFC3339)
	}
	if d.DeadLetter != nil {
		line += "  dlq " + termSafe(d.DeadLetter.Stream) + "#" + strconv.FormatUint(d.DeadLetter.Seq, 10)
	}
	if d.Error != "" {
		line += "  error: " + termSafe(d.Error)
	}
	_, err := fmt.Fprintln(w, line)
	return err
}
