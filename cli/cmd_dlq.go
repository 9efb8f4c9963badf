package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/aweber-imbi/imbi-worker/internal/dlq"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// dlqOptions are the flags every dlq subcommand shares.
type dlqOptions struct {
	nats          toolNATSFlags
	stream        string
	prefix        string
	subjectPrefix string
	jsonOut       bool
}

// dlqFilterFlags are the selection flags of list, stats, replay and purge.
type dlqFilterFlags struct {
	reasons       []string
	handlers      []string
	since, until  string
	seq           uint64
	fromSeq       uint64
	toSeq         uint64
	limit         int
	chain         string
	all           bool
	allowsAllFlag bool
}

func (f *dlqFilterFlags) register(cmd *cobra.Command, withAll bool) {
	fs := cmd.Flags()
	fs.StringSliceVar(&f.reasons, "reason", nil, "only these reasons (repeatable or comma-separated; also matches Imbi-Dlq-Last-Reason)")
	fs.StringSliceVar(&f.handlers, "handler", nil, "only these handlers: <plugin>#<action>, <plugin>, or _invalid")
	fs.StringVar(&f.since, "since", "", "dead at or after: RFC 3339 time, date (2006-01-02) or age (90m, 6h, 2d)")
	fs.StringVar(&f.until, "until", "", "dead before: RFC 3339 time, date or age")
	fs.Uint64Var(&f.seq, "seq", 0, "only the letter with this dead-letter stream sequence")
	fs.Uint64Var(&f.fromSeq, "from-seq", 0, "sequences from (inclusive)")
	fs.Uint64Var(&f.toSeq, "to-seq", 0, "sequences up to (inclusive)")
	fs.IntVar(&f.limit, "limit", 0, "stop after this many letters (0: no limit)")
	fs.StringVar(&f.chain, "chain", "", "only the steps of this ordered chain (Imbi-Dlq-Chain-Id)")
	markCommandLineOnly(fs, "reason", "handler", "since", "until", "seq", "from-seq", "to-seq", "limit", "chain")
	if withAll {
		f.allowsAllFlag = true
		fs.BoolVar(&f.all, "all", false, "select every letter (required when no filter is given)")
		markCommandLineOnly(fs, "all")
	}
}

func (f *dlqFilterFlags) build(cmd *cobra.Command, now time.Time) (dlq.Filter, error) {
	out := dlq.Filter{Reasons: f.reasons, Handlers: f.handlers, Seq: f.seq, FromSeq: f.fromSeq, ToSeq: f.toSeq, Limit: f.limit, ChainID: f.chain}
	var err error
	if out.Since, err = parseWhen(f.since, now); err != nil {
		return out, fmt.Errorf("--since: %w", err)
	}
	if out.Until, err = parseWhen(f.until, now); err != nil {
		return out, fmt.Errorf("--until: %w", err)
	}
	if err := out.Validate(); err != nil {
		return out, err
	}
	if f.allowsAllFlag {
		// A mass replay or purge must be asked for, not fallen into.
		if out.IsZero() && !f.all {
			return out, fmt.Errorf("no filter given: pass --all to select every dead letter")
		}
		if !out.IsZero() && f.all {
			return out, fmt.Errorf("--all cannot be combined with filters")
		}
	}
	return out, nil
}

var agePattern = regexp.MustCompile(`^(\d+)d$`)

// parseWhen reads an RFC 3339 time, a date (UTC midnight) or an age before
// now (a Go duration, or whole days "2d").
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.UTC(), nil
	}
	if m := agePattern.FindStringSubmatch(s); m != nil {
		days, _ := strconv.Atoi(m[1])
		return now.Add(-time.Duration(days) * 24 * time.Hour).UTC(), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time, a date or an age like 90m, 6h, 2d", s)
}

func newDLQCmd() *cobra.Command {
	var o dlqOptions
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, replay and purge dead letters",
		Long: `Dead letters are failed action messages kept in the dead-letter stream
(IMBI_ACTIONS_DLQ) with Imbi-Dlq-* headers saying why (wire-contract §5).
docs/dead-letters.md explains every reason and what to do about it.

Reading (list, show, stats) changes nothing. replay republishes letters to the
subject they came from and deletes each once the republish is acknowledged.
purge deletes letters and needs --yes.`,
	}
	pf := cmd.PersistentFlags()
	o.nats.register(pf)
	pf.StringVar(&o.stream, "dlq-stream", wire.DefaultDLQStream, "dead-letter stream name")
	pf.StringVar(&o.prefix, "dlq-prefix", wire.DefaultDLQPrefix, "dead-letter subject prefix")
	pf.StringVar(&o.subjectPrefix, "subject-prefix", wire.DefaultSubjectPrefix, "work subject prefix (replay only publishes under it)")
	pf.BoolVar(&o.jsonOut, "json", false, "print JSON instead of text")
	markCommandLineOnly(pf, "json")
	cmd.AddCommand(newDLQListCmd(&o), newDLQShowCmd(&o), newDLQStatsCmd(&o), newDLQReplayCmd(&o), newDLQPurgeCmd(&o))
	return cmd
}

// open connects and opens the dead-letter stream; close releases both.
func (o *dlqOptions) open(ctx context.Context) (*dlq.Store, func(), error) {
	sess, err := o.nats.connect("dlq")
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(sess.NC, jetstream.WithDefaultTimeout(o.nats.timeout))
	if err != nil {
		sess.Close()
		return nil, nil, err
	}
	store, err := dlq.Open(ctx, js, dlq.Config{Stream: o.stream, Prefix: o.prefix, WorkPrefix: o.subjectPrefix})
	if err != nil {
		sess.Close()
		return nil, nil, err
	}
	return store, sess.Close, nil
}

// withFiltered builds the filter from the command's flags, opens the
// dead-letter store, runs fn and closes the store: the common start of
// list, stats, replay and purge.
func (o *dlqOptions) withFiltered(cmd *cobra.Command, f *dlqFilterFlags, fn func(ctx context.Context, store *dlq.Store, filter dlq.Filter) error) error {
	filter, err := f.build(cmd, time.Now())
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	store, closeFn, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	return fn(ctx, store, filter)
}

// writeJSON writes v indented, with C1 and bidi characters escaped too
// (encoding/json escapes only C0): see jsonTermSafe.
func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(jsonTermSafe(buf.Bytes()))
	return err
}

func newDLQListCmd(o *dlqOptions) *cobra.Command {
	var f dlqFilterFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withFiltered(cmd, &f, func(ctx context.Context, store *dlq.Store, filter dlq.Filter) error {
				letters, err := store.List(ctx, filter)
				if err != nil {
					return err
				}
				if o.jsonOut {
					if letters == nil {
						letters = []dlq.Letter{}
					}
					return writeJSON(cmd.OutOrStdout(), letters)
				}
				return printLetterTable(cmd.OutOrStdout(), letters)
			})
		},
	}
	f.register(cmd, false)
	return cmd
}

func printLetterTable(w io.Writer, letters []dlq.Letter) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tDEAD AT\tREASON\tHANDLER\tATTEMPTS\tEVENT ID\tCHAIN\tERROR")
	for _, l := range letters {
		reason := l.Reason
		if l.LastReason != "" {
			reason += "/" + l.LastReason
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", l.Seq, l.When().Format(time.RFC3339), termSafe(dash(reason)), termSafe(dash(l.Handler)),
			l.Attempts, termSafe(dash(l.EventID)), termSafe(chainCell(l)), termSafe(dash(oneLine(l.Error, 60))))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d dead letter(s)\n", len(letters))
	return err
}

// chainCell is "<chain id>@<position>" ("+" when the chain was continued
// past this step), or "-" outside a chain.
func chainCell(l dlq.Letter) string {
	if l.ChainID == "" {
		return "-"
	}
	pos := "?"
	if l.ChainPosition != nil {
		pos = strconv.Itoa(*l.ChainPosition)
	}
	s := l.ChainID + "@" + pos
	if l.ChainContinued {
		s += "+"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a table row on one line and bounded.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

func newDLQShowCmd(o *dlqOptions) *cobra.Command {
	var seqFlag uint64
	cmd := &cobra.Command{
		Use:     "show SEQ",
		Short:   "Show one dead letter: its headers and body, secrets redacted",
		Example: "  imbi-worker dlq show 1234\n  imbi-worker dlq show --seq 1234 --json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq := seqFlag
			switch {
			case len(args) == 1 && seqFlag != 0:
				return fmt.Errorf("give the sequence once: SEQ or --seq")
			case len(args) == 1:
				n, err := strconv.ParseUint(args[0], 10, 64)
				if err != nil || n == 0 {
					return fmt.Errorf("SEQ %q is not a stream sequence (see `imbi-worker dlq list`)", args[0])
				}
				seq = n
			case seqFlag == 0:
				return fmt.Errorf("which letter? pass its sequence: show SEQ or --seq SEQ (see `imbi-worker dlq list`)")
			}
			ctx := cmd.Context()
			store, closeFn, err := o.open(ctx)
			if err != nil {
				return err
			}
			defer closeFn()
			l, err := store.Get(ctx, seq)
			if err != nil {
				return err
			}
			v := dlq.Redacted(l)
			if o.jsonOut {
				return writeJSON(cmd.OutOrStdout(), v)
			}
			return printLetterView(cmd.OutOrStdout(), v)
		},
	}
	cmd.Flags().Uint64Var(&seqFlag, "seq", 0, "the letter's dead-letter stream sequence (instead of SEQ)")
	markCommandLineOnly(cmd.Flags(), "seq")
	return cmd
}

func printLetterView(w io.Writer, v dlq.View) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	// Every value but the numbers and times comes from the message.
	row := func(k, val string) { fmt.Fprintf(tw, "%s:\t%s\n", k, termSafe(val)) }
	row("seq", strconv.FormatUint(v.Seq, 10))
	row("subject", v.Subject)
	row("handler", dash(v.Handler))
	row("event id", dash(v.EventID))
	reason := v.Reason
	if v.LastReason != "" {
		reason += " (last reason: " + v.LastReason + ")"
	}
	row("reason", dash(reason))
	row("error", dash(v.Error))
	row("attempts", strconv.Itoa(v.Attempts))
	row("original subject", dash(v.OriginalSubject))
	row("original seq", strconv.FormatUint(v.OriginalSeq, 10))
	row("first received", timeOrDash(v.FirstReceived))
	row("dead at", timeOrDash(v.DeadAt))
	row("stored", timeOrDash(v.Stored))
	row("worker", dash(v.Worker))
	row("replays", strconv.Itoa(v.Replays))
	if v.ChainID != "" {
		row("chain id", v.ChainID)
		pos := "-"
		if v.ChainPosition != nil {
			pos = strconv.Itoa(*v.ChainPosition)
		}
		row("chain position", pos)
		row("chain continued", strconv.FormatBool(v.ChainContinued))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "headers:")
	names := make([]string, 0, len(v.Headers))
	for k := range v.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, val := range v.Headers[k] {
			fmt.Fprintf(w, "  %s: %s\n", termSafe(k), termSafe(val))
		}
	}
	fmt.Fprintln(w, "body:")
	switch {
	case len(v.Body) > 0:
		for _, line := range termSafeLines(string(v.Body)) {
			fmt.Fprintln(w, "  "+line)
		}
	case v.BodyText != "":
		for _, line := range termSafeLines(v.BodyText) {
			fmt.Fprintln(w, "  "+line)
		}
	default:
		fmt.Fprintln(w, "  (empty)")
	}
	return nil
}

func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339Nano)
}

func newDLQStatsCmd(o *dlqOptions) *cobra.Command {
	var f dlqFilterFlags
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Count dead letters by reason and by handler",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withFiltered(cmd, &f, func(ctx context.Context, store *dlq.Store, filter dlq.Filter) error {
				st, err := store.Stats(ctx, filter)
				if err != nil {
					return err
				}
				if o.jsonOut {
					return writeJSON(cmd.OutOrStdout(), st)
				}
				return printStats(cmd.OutOrStdout(), st)
			})
		},
	}
	f.register(cmd, false)
	return cmd
}

func printStats(w io.Writer, st dlq.Stats) error {
	fmt.Fprintf(w, "%d dead letter(s)\n", st.Total)
	for _, section := range []struct {
		title  string
		groups []dlq.Group
	}{{"BY REASON", st.ByReason}, {"BY HANDLER", st.ByHandler}, {"BY REASON AND HANDLER", st.ByReasonHandler},
		{"BY CHAIN", st.ByChain}, {"BY CHAIN AND POSITION", st.ByChainPosition}} {
		if len(section.groups) == 0 {
			continue
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "%s\tCOUNT\tOLDEST\tNEWEST\n", section.title)
		for _, g := range section.groups {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", termSafe(g.Key), g.Count, g.Oldest.Format(time.RFC3339), g.Newest.Format(time.RFC3339))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func newDLQReplayCmd(o *dlqOptions) *cobra.Command {
	var (
		f         dlqFilterFlags
		dryRun    bool
		rate      float64
		keepGoing bool
	)
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Republish dead letters to their work subject, deleting each once acknowledged",
		Long: `Replay republishes each selected dead letter (wire-contract §5): the original
body and headers without the Imbi-Dlq-* headers, to Imbi-Dlq-Original-Subject, with
a new Nats-Msg-Id <ce id>.replay.<n> and the same CloudEvent id (so the worker's
done-marker still prevents running an action twice). A letter is deleted only
after the work stream acknowledged its republish. Fix the cause first (see
docs/dead-letters.md), or the letters will come straight back.`,
		Example: `  imbi-worker dlq replay --reason unavailable --since 6h --dry-run
  imbi-worker dlq replay --handler github#create_issue --rate 20
  imbi-worker dlq replay --seq 1234`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rate < 0 {
				return fmt.Errorf("--rate must not be negative")
			}
			return o.withFiltered(cmd, &f, func(ctx context.Context, store *dlq.Store, filter dlq.Filter) error {
				bar := newProgressBar(cmd.ErrOrStderr(), "replay")
				sum, err := store.ReplayAll(ctx, filter, dlq.ReplayOptions{DryRun: dryRun, Rate: rate, KeepGoing: keepGoing, Progress: bar.update})
				bar.done()
				if o.jsonOut {
					if jerr := writeJSON(cmd.OutOrStdout(), sum); jerr != nil {
						return jerr
					}
				} else {
					printReplaySummary(cmd.OutOrStdout(), sum)
				}
				if err != nil {
					return err
				}
				if sum.Failed > 0 {
					return fmt.Errorf("%d of %d replays failed", sum.Failed, sum.Matched)
				}
				return nil
			})
		},
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be replayed; publish and delete nothing")
	cmd.Flags().Float64Var(&rate, "rate", 0, "replays per second at most (0: no limit)")
	cmd.Flags().BoolVar(&keepGoing, "keep-going", false, "continue after a letter fails to replay")
	markCommandLineOnly(cmd.Flags(), "dry-run", "rate", "keep-going")
	return cmd
}

func printReplaySummary(w io.Writer, sum dlq.ReplaySummary) {
	verb := "replayed"
	if sum.DryRun {
		verb = "would replay"
	}
	for _, r := range sum.Letters {
		fmt.Fprintf(w, "%s seq %d -> %s as %s\n", verb, r.Seq, termSafe(r.Subject), termSafe(r.MsgID))
	}
	for _, e := range sum.Errors {
		fmt.Fprintln(w, "error:", termSafe(e))
	}
	fmt.Fprintf(w, "%s %d of %d dead letter(s), %d failed\n", verb, sum.Replayed, sum.Matched, sum.Failed)
}

func newDLQPurgeCmd(o *dlqOptions) *cobra.Command {
	var (
		f   dlqFilterFlags
		yes bool
	)
	cmd := &cobra.Command{
		Use:   "purge",
		Short: "Delete dead letters for good (needs --yes)",
		Example: `  imbi-worker dlq purge --reason invalid_event --until 7d --yes
  imbi-worker dlq purge --all --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withFiltered(cmd, &f, func(ctx context.Context, store *dlq.Store, filter dlq.Filter) error {
				if !yes {
					st, err := store.Stats(ctx, filter)
					if err != nil {
						return err
					}
					return fmt.Errorf("would delete %d dead letter(s); nothing deleted: rerun with --yes", st.Total)
				}
				n, err := store.Purge(ctx, filter)
				if o.jsonOut {
					if jerr := writeJSON(cmd.OutOrStdout(), map[string]int{"purged": n}); jerr != nil {
						return jerr
					}
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "purged %d dead letter(s)\n", n)
				}
				return err
			})
		},
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&yes, "yes", false, "really delete")
	markCommandLineOnly(cmd.Flags(), "yes")
	return cmd
}

// progressBar draws on a terminal only: piped or redirected output stays
// clean for scripts.
type progressBar struct {
	w     io.Writer
	label string
	shown bool
}

func newProgressBar(w io.Writer, label string) *progressBar {
	if !isTerminal(w) {
		return &progressBar{}
	}
	return &progressBar{w: w, label: label}
}

func (b *progressBar) update(done, total int) {
	if b.w == nil || total == 0 {
		return
	}
	const width = 30
	filled := done * width / total
	fmt.Fprintf(b.w, "\r%s [%s%s] %d/%d", b.label, strings.Repeat("#", filled), strings.Repeat(" ", width-filled), done, total)
	b.shown = true
}

func (b *progressBar) done() {
	if b.shown {
		fmt.Fprintln(b.w)
	}
}

// isTerminal: golang.org/x/term is not a dependency; a character device is
// what a terminal looks like to Stat.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
