package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aweber-imbi/imbi-worker/publisher"
	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// maxPublishInput bounds what publish reads from a file or stdin (the
// embedded server's max payload).
const maxPublishInput = 8 << 20

// toolNATSFlags are the connection flags of the operator tools (publish,
// dlq): run's connection flags (URL, creds, nkey, TLS) plus the data dir
// in which `imbi-worker run` leaves the embedded server's URL (URLFile), so
// a tool on the same host needs no --nats-url.
type toolNATSFlags struct {
	conn    natsConnFlags
	dataDir string
	timeout time.Duration
}

func (f *toolNATSFlags) register(fs *pflag.FlagSet) {
	f.conn.addFlags(fs, false)
	// The URL flag's text differs from run's: tools never start a server.
	fs.Lookup("nats-url").Usage = "NATS server URL(s), comma-separated (default: the embedded server's URL from <data-dir>/" + URLFile + ")"
	fs.StringVar(&f.dataDir, "data-dir", "./.imbi-worker", "data directory of imbi-worker run (to find the embedded server's URL)")
	fs.DurationVar(&f.timeout, "nats-timeout", 10*time.Second, "timeout of each NATS request (publish ack, stream read)")
}

// resolveURL is --nats-url, else the URL file in the data dir.
func (f *toolNATSFlags) resolveURL() (string, error) {
	if f.conn.URL != "" {
		return f.conn.URL, nil
	}
	path := filepath.Join(f.dataDir, URLFile)
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("no NATS URL: pass --nats-url (or %s), or start `imbi-worker run` with its embedded server, which writes %s", EnvName("nats-url"), path)
		}
		return "", fmt.Errorf("read NATS URL: %w", err)
	}
	u := strings.TrimSpace(string(b))
	if u == "" {
		return "", fmt.Errorf("%s is empty: pass --nats-url", path)
	}
	return u, nil
}

// connect dials the resolved URL with run's connection options.
func (f *toolNATSFlags) connect(name string) (*natsSession, error) {
	u, err := f.resolveURL()
	if err != nil {
		return nil, err
	}
	conn := f.conn
	conn.URL = u
	if conn.Name == "" || conn.Name == "imbi-worker" {
		conn.Name = "imbi-worker " + name
	}
	// connect's errors name the flag at fault, or the URL with any
	// user:password redacted.
	return conn.connect(false, io.Discard, nil)
}

// redactNATSURL replaces the user info of each URL of a comma-separated
// list (everything up to its last "@") with [redacted].
func redactNATSURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
				parts[i] = u[:scheme+3] + "[redacted]@" + u[at+1:]
			} else {
				parts[i] = "[redacted]@" + u[at+1:]
			}
		}
	}
	return strings.Join(parts, ",")
}

type publishOptions struct {
	nats          toolNATSFlags
	count         int
	rate          float64
	binary        bool
	raw           bool
	subject       string
	subjectPrefix string
	id            string
	headers       []string
	maxPending    int
	jsonOut       bool
}

func newPublishCmd() *cobra.Command {
	var o publishOptions
	cmd := &cobra.Command{
		Use:   "publish [FILE|-]",
		Short: "Publish a CloudEvent (or an event spec wrapped into one) to the work stream",
		Long: `Publish reads one JSON document from FILE, or stdin when FILE is "-" or absent, and
publishes it to JetStream, waiting for the acks.

The document is either
  - a CloudEvent (a JSON object with "specversion"): published as it is (any type,
    source, subject), so test events the worker must reject can be sent too; or
  - an event spec: {"delivery_id": "...", "id": "...", "time": "RFC 3339", "data": {...}}
    where data is the envelope of wire-contract §3 (rule, plugin, context,
    external_identifier, event). It is wrapped into the contract's CloudEvent: type
    io.imbi.webhook.action.v1, source /imbi-gateway/webhooks/<event.metadata.webhook_id>,
    id <delivery_id>.<rule.ordinal> (or "id"), subject = rule.handler. A bare envelope
    (an object with "rule") is an event spec with a generated delivery id.
    With "rules": [{"rule": {...}, "plugin": {...}}, ...] (and optional "chain_id",
    default <delivery_id>.<context.project_id>, and "on_failure": continue|stop) the
    spec is an ordered chain (wire-contract §A): the first rule is published with
    data.chain holding the rest, and the worker runs them one after another.
With --raw the bytes are published unchanged to --subject (to send something that
is not a CloudEvent at all).

The subject is imbi.actions.<plugin>.<action> from the CloudEvent subject (the
handler) unless --subject is given. Messages are structured mode
(Content-Type: application/cloudevents+json) unless --binary; Nats-Msg-Id is the
CloudEvent id. With --count N each copy gets its own id, <id>.<n>, so JetStream's
duplicate window does not drop them; --rate paces the publishes.`,
		Example: `  imbi-worker publish testdata/events/http-success.json
  cat event.json | imbi-worker publish --nats-url nats://127.0.0.1:4222
  imbi-worker publish --count 10000 --rate 2000 spec.json
  imbi-worker publish --raw --subject imbi.actions.http.request garbage.bin`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "-"
			if len(args) == 1 {
				path = args[0]
			}
			return runPublish(cmd.Context(), cmd, o, path)
		},
	}
	fs := cmd.Flags()
	o.nats.register(fs)
	fs.IntVar(&o.count, "count", 1, "publish N copies, each with its own CloudEvent id <id>.<n>")
	fs.Float64Var(&o.rate, "rate", 0, "publishes per second (0: as fast as acks allow)")
	fs.BoolVar(&o.binary, "binary", false, "binary mode (ce-* headers, body = data) instead of structured")
	fs.BoolVar(&o.raw, "raw", false, "publish the input bytes unchanged to --subject (no CloudEvent encoding)")
	fs.StringVar(&o.subject, "subject", "", "NATS subject (default: from the CloudEvent subject)")
	fs.StringVar(&o.subjectPrefix, "subject-prefix", wire.DefaultSubjectPrefix, "work subject prefix")
	fs.StringVar(&o.id, "id", "", "CloudEvent id (overrides the document's; with --raw: the Nats-Msg-Id)")
	fs.StringArrayVar(&o.headers, "header", nil, "extra NATS header 'Name: value' (repeatable)")
	fs.IntVar(&o.maxPending, "max-pending", 4096, "unacknowledged publishes in flight at most")
	fs.BoolVar(&o.jsonOut, "json", false, "print the summary as JSON")
	markCommandLineOnly(fs, "count", "rate", "binary", "raw", "subject", "id", "header", "max-pending", "json")
	return cmd
}

// publishSummary is what publish prints.
type publishSummary struct {
	Subject    string  `json:"subject"`
	Mode       string  `json:"mode"`
	FirstID    string  `json:"first_id,omitempty"`
	Published  uint64  `json:"published"`
	Acked      uint64  `json:"acked"`
	Duplicates uint64  `json:"duplicates"`
	Failed     uint64  `json:"failed"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"per_second"`
}

func runPublish(ctx context.Context, cmd *cobra.Command, o publishOptions, path string) error {
	if o.count < 1 {
		return fmt.Errorf("--count must be at least 1")
	}
	if o.rate < 0 {
		return fmt.Errorf("--rate must not be negative")
	}
	if o.raw && o.subject == "" {
		return fmt.Errorf("--raw needs --subject")
	}
	extra, err := parseHeaderFlags(o.headers)
	if err != nil {
		return err
	}
	body, err := readPublishInput(cmd.InOrStdin(), path)
	if err != nil {
		return err
	}
	mode := publisher.Structured
	if o.binary {
		mode = publisher.Binary
	}
	build, subject, err := publishBuilder(body, o, mode, extra)
	if err != nil {
		return err
	}

	sess, err := o.nats.connect("publish")
	if err != nil {
		return err
	}
	defer sess.Close()
	p, err := publisher.New(sess.NC, publisher.Config{SubjectPrefix: o.subjectPrefix, Mode: mode, MaxPending: o.maxPending, AckTimeout: o.nats.timeout})
	if err != nil {
		return err
	}
	defer p.Close()

	sum := publishSummary{Subject: subject, Mode: mode.String()}
	if o.raw {
		sum.Mode = "raw"
	}
	var interval time.Duration
	if o.rate > 0 {
		interval = time.Duration(float64(time.Second) / o.rate)
	}
	var single publisher.Stats
	start := time.Now()
	for n := 1; n <= o.count; n++ {
		if interval > 0 && n > 1 {
			if wait := time.Until(start.Add(time.Duration(n-1) * interval)); wait > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait):
				}
			}
		}
		msg, err := build(ctx, n)
		if err != nil {
			return err
		}
		if n == 1 {
			sum.FirstID = msg.Header.Get(wire.HeaderMsgID)
		}
		if o.count == 1 {
			// One message: wait for its ack, a clear error if none.
			ack, err := p.PublishMsg(ctx, msg)
			if err != nil {
				return err
			}
			single = publisher.Stats{Published: 1, Acked: 1}
			if ack.Duplicate {
				single.Duplicates = 1
			}
			continue
		}
		if _, err := p.PublishMsgAsync(ctx, msg); err != nil {
			return err
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, o.nats.timeout+time.Duration(o.count/1000)*time.Second)
	defer cancel()
	stats, waitErr := p.Wait(waitCtx)
	if o.count == 1 {
		stats = single
	}
	elapsed := time.Since(start).Seconds()
	sum.Published, sum.Acked, sum.Duplicates, sum.Failed = stats.Published, stats.Acked, stats.Duplicates, stats.Failed
	sum.Seconds = elapsed
	if elapsed > 0 {
		sum.PerSecond = float64(stats.Acked) / elapsed
	}
	if err := printPublishSummary(cmd.OutOrStdout(), sum, o.jsonOut); err != nil {
		return err
	}
	if waitErr != nil {
		return waitErr
	}
	if sum.Failed > 0 {
		return fmt.Errorf("%d of %d publishes failed", sum.Failed, sum.Published)
	}
	return nil
}

func printPublishSummary(w io.Writer, s publishSummary, asJSON bool) error {
	if asJSON {
		return writeJSON(w, s)
	}
	_, err := fmt.Fprintf(w, "published %d to %s (%s, first id %s): acked %d, duplicates %d, failed %d in %.2fs (%.0f msg/s)\n",
		s.Published, termSafe(s.Subject), s.Mode, termSafe(s.FirstID), s.Acked, s.Duplicates, s.Failed, s.Seconds, s.PerSecond)
	return err
}

func readPublishInput(stdin io.Reader, path string) ([]byte, error) {
	var r io.Reader = stdin
	name := "stdin"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r, name = f, path
	}
	b, err := io.ReadAll(io.LimitReader(r, maxPublishInput+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > maxPublishInput {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxPublishInput)
	}
	return b, nil
}

func parseHeaderFlags(in []string) (nats.Header, error) {
	h := nats.Header{}
	for _, kv := range in {
		name, value, ok := strings.Cut(kv, ":")
		if !ok {
			name, value, ok = strings.Cut(kv, "=")
		}
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") || strings.ContainsAny(value, "\r\n") {
			return nil, fmt.Errorf("--header %q: want 'Name: value'", kv)
		}
		h.Add(name, strings.TrimSpace(value))
	}
	return h, nil
}

// msgBuilder makes copy n (1-based) of the message to publish.
type msgBuilder func(ctx context.Context, n int) (*nats.Msg, error)

// publishBuilder decodes the input once and returns how to build each copy
// and the subject they go to.
func publishBuilder(body []byte, o publishOptions, mode publisher.Mode, extra nats.Header) (msgBuilder, string, error) {
	withCopy := func(id string, n int) string {
		if o.count == 1 {
			return id
		}
		return id + "." + strconv.Itoa(n)
	}
	addExtra := func(m *nats.Msg) {
		for k, vs := range extra {
			for _, v := range vs {
				m.Header.Add(k, v)
			}
		}
	}
	if o.raw {
		return func(_ context.Context, n int) (*nats.Msg, error) {
			m := nats.NewMsg(o.subject)
			m.Data = body
			if o.id != "" {
				m.Header.Set(wire.HeaderMsgID, withCopy(o.id, n))
			}
			addExtra(m)
			return m, nil
		}, o.subject, nil
	}

	ev, err := decodePublishInput(body, time.Now())
	if err != nil {
		return nil, "", err
	}
	if o.id != "" {
		ev.SetID(o.id)
	}
	if o.count > 1 && hasChain(ev) {
		// Copies would share the chain id, so their later steps would
		// share CE ids and be dropped as duplicates.
		return nil, "", errors.New("--count cannot copy a chain (its later steps' ids derive from chain.id); publish each chain with its own chain_id")
	}
	subject := o.subject
	if subject == "" {
		if subject, err = publisher.SubjectFor(o.subjectPrefix, ev); err != nil {
			return nil, "", fmt.Errorf("%w; pass --subject to publish it anyway", err)
		}
	}
	baseID := ev.ID()
	return func(ctx context.Context, n int) (*nats.Msg, error) {
		c := ev.Clone()
		c.SetID(withCopy(baseID, n))
		m, err := publisher.EncodeMsg(ctx, c, subject, mode)
		if err != nil {
			return nil, err
		}
		addExtra(m)
		return m, nil
	}, subject, nil
}

// eventSpec is the non-CloudEvent input of publish: the envelope plus the
// few attributes the gateway knows.
type eventSpec struct {
	DeliveryID string          `json:"delivery_id"`
	ID         string          `json:"id"`
	Time       *time.Time      `json:"time"`
	Data       json.RawMessage `json:"data"`
	// Rules, when given, are an ordered chain (wire-contract §A): the
	// first is published with data.chain holding the rest.
	Rules     []chainRuleSpec `json:"rules"`
	ChainID   string          `json:"chain_id"`
	OnFailure string          `json:"on_failure"`
}

// chainRuleSpec is one rule of a chain spec.
type chainRuleSpec struct {
	Rule   wire.Rule       `json:"rule"`
	Plugin *wire.PluginRef `json:"plugin"`
}

// decodePublishInput turns publish's input into a CloudEvent: a CloudEvent
// as it is, an event spec (or bare envelope) through publisher.NewEvent.
// now names generated delivery ids.
func decodePublishInput(body []byte, now time.Time) (event.Event, error) {
	trimmed := bytes.TrimSpace(body)
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &probe); err != nil || probe == nil {
		return event.Event{}, errors.New("input is not a JSON object (use --raw to publish arbitrary bytes)")
	}
	if _, ok := probe["specversion"]; ok {
		var ev event.Event
		if err := ev.UnmarshalJSON(trimmed); err != nil {
			return event.Event{}, fmt.Errorf("input is not a valid CloudEvent: %w", err)
		}
		if err := ev.Validate(); err != nil {
			return event.Event{}, fmt.Errorf("input is not a valid CloudEvent (use --raw to publish it anyway): %w", err)
		}
		return ev, nil
	}

	var spec eventSpec
	if _, ok := probe["rule"]; ok {
		spec.Data = trimmed
	} else {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&spec); err != nil {
			return event.Event{}, fmt.Errorf("input is neither a CloudEvent, an event spec {delivery_id, id, time, data} nor an envelope with \"rule\": %w", err)
		}
		if len(spec.Data) == 0 {
			return event.Event{}, errors.New(`event spec has no "data"`)
		}
	}
	var data wiredata.ActionData
	if err := json.Unmarshal(spec.Data, &data); err != nil {
		return event.Event{}, fmt.Errorf("event spec data: %w", err)
	}
	if len(spec.Rules) > 0 {
		return chainSpecEvent(spec, data, now)
	}
	if spec.ChainID != "" || spec.OnFailure != "" {
		return event.Event{}, errors.New(`event spec: chain_id and on_failure need "rules"`)
	}
	m := publisher.Message{DeliveryID: spec.DeliveryID, ID: spec.ID, Data: data}
	if spec.Time != nil {
		m.ReceivedAt = *spec.Time
	}
	if m.DeliveryID == "" && m.ID == "" {
		m.DeliveryID = generatedDeliveryID(now)
	}
	return publisher.NewEvent(m)
}

// chainSpecEvent is the first step of a chain spec (publisher.NewChainEvent).
func chainSpecEvent(spec eventSpec, data wiredata.ActionData, now time.Time) (event.Event, error) {
	c := publisher.Chain{ID: spec.ChainID, DeliveryID: spec.DeliveryID, OnFailure: spec.OnFailure, Data: data}
	if spec.Time != nil {
		c.ReceivedAt = *spec.Time
	}
	if c.DeliveryID == "" {
		c.DeliveryID = generatedDeliveryID(now)
	}
	for _, r := range spec.Rules {
		c.Rules = append(c.Rules, publisher.ChainRule{Rule: r.Rule, Plugin: r.Plugin})
	}
	ev, err := publisher.NewChainEvent(c)
	if err != nil {
		return event.Event{}, err
	}
	if spec.ID != "" {
		ev.SetID(spec.ID)
	}
	return ev, nil
}

// hasChain reports whether ev's data carries data.chain.
func hasChain(ev event.Event) bool {
	var probe struct {
		Chain json.RawMessage `json:"chain"`
	}
	return json.Unmarshal(ev.Data(), &probe) == nil && len(probe.Chain) > 0 && string(probe.Chain) != "null"
}

// generatedDeliveryID is unique enough for hand-published events: time
// plus random bits.
func generatedDeliveryID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "cli-" + now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}
