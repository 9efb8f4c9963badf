package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/aweber-imbi/imbi-worker/internal/streams"
)

func newStreamsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "streams",
		Short: "Provision the JetStream streams, bucket and consumer",
	}
	cmd.AddCommand(newStreamsApplyCmd())
	return cmd
}

func newStreamsApplyCmd() *cobra.Command {
	var (
		conn    natsConnFlags
		sf      streamFlags
		asJSON  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Create or update the work stream, dead-letter stream, done-marker bucket and durable consumer (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sess, err := conn.connect(false, cmd.ErrOrStderr(), nil)
			if err != nil {
				return err
			}
			defer sess.Close()
			js, err := jetstream.New(sess.NC)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			p, err := streams.Apply(ctx, js, sf.config())
			if err != nil {
				return err
			}
			return printApplied(ctx, cmd, p, asJSON)
		},
	}
	conn.addFlags(cmd.Flags(), false)
	sf.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the applied configuration as JSON")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	return cmd
}

func printApplied(ctx context.Context, cmd *cobra.Command, p *streams.Provisioned, asJSON bool) error {
	out := map[string]any{}
	si, err := p.Stream.Info(ctx)
	if err != nil {
		return err
	}
	di, err := p.DLQ.Info(ctx)
	if err != nil {
		return err
	}
	ci, err := p.Consumer.Info(ctx)
	if err != nil {
		return err
	}
	out["stream"], out["dlq"], out["consumer"] = si.Config, di.Config, ci.Config
	if p.Done != nil {
		st, err := p.Done.Status(ctx)
		if err != nil {
			return err
		}
		out["done_bucket"] = map[string]any{"bucket": st.Bucket(), "ttl": st.TTL().String()}
	}
	var oi *jetstream.StreamInfo
	if p.Outcomes != nil {
		if oi, err = p.Outcomes.Info(ctx); err != nil {
			return err
		}
		out["outcomes"] = oi.Config
	}
	if p.Lanes != nil {
		out["lanes_bucket"] = map[string]any{"bucket": p.Lanes.Bucket()}
	}
	w := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(w, "work stream  %s  subjects %v  work-queue, %s, replicas %d, dedup window %s\n",
		si.Config.Name, si.Config.Subjects, si.Config.Storage, si.Config.Replicas, si.Config.Duplicates)
	fmt.Fprintf(w, "dead letters %s  subjects %v  max age %s\n", di.Config.Name, di.Config.Subjects, di.Config.MaxAge)
	fmt.Fprintf(w, "consumer     %s  ack wait %s, max ack pending %d, max deliver %d, filter %v\n",
		ci.Config.Durable, ci.Config.AckWait, ci.Config.MaxAckPending, ci.Config.MaxDeliver,
		append([]string{ci.Config.FilterSubject}, ci.Config.FilterSubjects...))
	if oi != nil {
		fmt.Fprintf(w, "outcomes     %s  subjects %v  max age %s\n", oi.Config.Name, oi.Config.Subjects, oi.Config.MaxAge)
	}
	if p.Done != nil {
		fmt.Fprintf(w, "done-markers %v\n", out["done_bucket"])
	}
	if p.Lanes != nil {
		fmt.Fprintf(w, "lanes        %s  rate-limit lanes and deferral counts (per-key TTL)\n", p.Lanes.Bucket())
	}
	return nil
}
