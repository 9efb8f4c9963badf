package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/aweber-imbi/imbi-worker/internal/lanes"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// lanesOptions are the flags every lanes subcommand shares.
type lanesOptions struct {
	nats     toolNATSFlags
	bucket   string
	plugin   string
	pluginID string
	handler  string
	jsonOut  bool
}

func newLanesCmd() *cobra.Command {
	var o lanesOptions
	cmd := &cobra.Command{
		Use:   "lanes",
		Short: "List, pause and resume rate-limit lanes",
		Long: `A lane is a plugin plus the credential set in use (plugin.id). A rate-limited
action pauses its lane until the provider's retry-after; while a lane is paused,
every replica sends its messages back without running them, and without using
an attempt (wire-contract v1.1 §B). pause without --plugin-id holds every lane
of the plugin; an operator's pause lasts until resume unless --until is given.`,
	}
	pf := cmd.PersistentFlags()
	o.nats.register(pf)
	pf.StringVar(&o.bucket, "lanes-bucket", wire.DefaultLanesBucket, "KV bucket of lanes")
	pf.StringVar(&o.plugin, "plugin", "", "plugin slug")
	pf.StringVar(&o.pluginID, "plugin-id", "", "credential set (plugin.id); empty: every lane of the plugin")
	pf.StringVar(&o.handler, "handler", "", "<plugin>#<action>: the lane of its plugin (instead of --plugin)")
	pf.BoolVar(&o.jsonOut, "json", false, "print JSON instead of text")
	markCommandLineOnly(pf, "plugin", "plugin-id", "handler", "json")
	cmd.AddCommand(newLanesListCmd(&o), newLanesPauseCmd(&o), newLanesResumeCmd(&o))
	return cmd
}

// key is the lane the flags name ("" plugin: none named).
func (o *lanesOptions) key() (lanes.Key, error) {
	k := lanes.Key{Plugin: strings.TrimSpace(o.plugin), PluginID: o.pluginID}
	if o.handler != "" {
		h, err := wire.ParseHandler(o.handler)
		if err != nil {
			return k, fmt.Errorf("--handler: %w", err)
		}
		if k.Plugin != "" && k.Plugin != h.Plugin {
			return k, fmt.Errorf("--handler %s is not a handler of --plugin %s", o.handler, k.Plugin)
		}
		k.Plugin = h.Plugin
	}
	if k.Plugin == "" && k.PluginID != "" {
		return k, fmt.Errorf("--plugin-id needs --plugin or --handler")
	}
	return k, nil
}

// requiredKey is the lane the flags name, which verb needs.
func (o *lanesOptions) requiredKey(verb string) (lanes.Key, error) {
	k, err := o.key()
	if err == nil && k.Plugin == "" {
		err = fmt.Errorf("%s needs --plugin or --handler", verb)
	}
	return k, err
}

// withStore connects, binds the lanes bucket and runs fn on it.
func (o *lanesOptions) withStore(ctx context.Context, fn func(*lanes.Store) error) error {
	sess, err := o.nats.connect("lanes")
	if err != nil {
		return err
	}
	defer sess.Close()
	js, err := jetstream.New(sess.NC, jetstream.WithDefaultTimeout(o.nats.timeout))
	if err != nil {
		return err
	}
	store, err := lanes.Open(ctx, js, o.bucket)
	if err != nil {
		return err
	}
	return fn(store)
}

// laneJSON is a lane in --json output.
type laneJSON struct {
	Plugin      string     `json:"plugin"`
	PluginID    string     `json:"plugin_id,omitempty"`
	Paused      bool       `json:"paused"`
	PausedUntil *time.Time `json:"paused_until,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	SetBy       string     `json:"set_by,omitempty"`
	SetAt       time.Time  `json:"set_at"`
}

func newLanesListCmd(o *lanesOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List paused lanes (--plugin/--handler: of one plugin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := o.key()
			if err != nil {
				return err
			}
			var all []lanes.State
			if err := o.withStore(cmd.Context(), func(store *lanes.Store) (err error) {
				all, err = store.List(cmd.Context())
				return err
			}); err != nil {
				return err
			}
			out := []laneJSON{}
			for _, st := range all {
				if k.Plugin != "" && (st.Plugin != k.Plugin || k.PluginID != "" && st.PluginID != k.PluginID) {
					continue
				}
				l := laneJSON{Plugin: st.Plugin, PluginID: st.PluginID, Paused: true, Reason: st.Reason, SetBy: st.SetBy, SetAt: st.SetAt}
				if !st.PausedUntil.IsZero() {
					until := st.PausedUntil
					l.PausedUntil = &until
				}
				out = append(out, l)
			}
			w := cmd.OutOrStdout()
			if o.jsonOut {
				return writeJSON(w, map[string]any{"lanes": out})
			}
			if len(out) == 0 {
				_, err := fmt.Fprintln(w, "no lane is paused")
				return err
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PLUGIN\tPLUGIN_ID\tPAUSED_UNTIL\tSET_BY\tREASON")
			for _, l := range out {
				until := "resumed by hand"
				if l.PausedUntil != nil {
					until = l.PausedUntil.UTC().Format(time.RFC3339)
				}
				id := l.PluginID
				if id == "" {
					id = "(all)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", termSafe(l.Plugin), termSafe(id), until, termSafe(l.SetBy), termSafe(l.Reason))
			}
			return tw.Flush()
		},
	}
}

func newLanesPauseCmd(o *lanesOptions) *cobra.Command {
	var until, reason string
	cmd := &cobra.Command{
		Use:   "pause",
		Short: "Pause a lane (every lane of the plugin without --plugin-id) until resumed or --until",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := o.requiredKey("pause")
			if err != nil {
				return err
			}
			now := time.Now()
			req := lanes.PauseRequest{Lane: k, Reason: reason, By: operator()}
			if until != "" {
				if d, err := time.ParseDuration(until); err == nil && d > 0 {
					req.Until = now.Add(d)
				} else if t, err := time.Parse(time.RFC3339, until); err == nil {
					req.Until = t
				} else {
					return fmt.Errorf("--until: %q is not an RFC 3339 time or a positive duration like 2h", until)
				}
			}
			if err := o.withStore(cmd.Context(), func(store *lanes.Store) error {
				return store.Pause(cmd.Context(), req)
			}); err != nil {
				return err
			}
			if o.jsonOut {
				return writeJSON(cmd.OutOrStdout(), struct {
					Paused lanes.Key `json:"paused"`
					Until  time.Time `json:"until,omitzero"` // absent: until resumed
					By     string    `json:"by"`
				}{k, req.Until, req.By})
			}
			when := "until resumed"
			if !req.Until.IsZero() {
				when = "until " + req.Until.UTC().Format(time.RFC3339)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "paused %s %s\n", termSafe(k.String()), when)
			return err
		},
	}
	cmd.Flags().StringVar(&until, "until", "", "end of the pause: RFC 3339 time or duration (2h); default: until resumed")
	cmd.Flags().StringVar(&reason, "reason", "", "why (shown by list and the console)")
	markCommandLineOnly(cmd.Flags(), "until", "reason")
	return cmd
}

func newLanesResumeCmd(o *lanesOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "resume",
		Short: "Resume a lane (every lane of the plugin without --plugin-id)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := o.requiredKey("resume")
			if err != nil {
				return err
			}
			if err := o.withStore(cmd.Context(), func(store *lanes.Store) error {
				return store.Resume(cmd.Context(), k, operator())
			}); err != nil {
				return err
			}
			if o.jsonOut {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"resumed": k})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "resumed %s\n", termSafe(k.String()))
			return err
		},
	}
}

// operator is who a pause from the command line is recorded as.
func operator() string {
	if u := os.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli"
}
