// Command imbi-worker-chaos is imbi-worker plus the test-only chaos plugins
// (test/chaos/chaosplugin), assembled like any custom build: cli.Main after
// registering plugins. The crash suite runs it as real processes; it is
// never shipped.
//
// IMBI_CHAOS_RECORD_DIR names the directory where the record action appends
// the CloudEvent ids it ran for (one runs-<pid>.log per process);
// IMBI_CHAOS_FSYNC=1 fsyncs every record. IMBI_CHAOS_KILL_NATS_URL arms
// the record action's kill_after_marker (chaosplugin.MarkerKiller).
package main

import (
	"fmt"
	"os"

	"github.com/aweber-imbi/imbi-worker/cli"
	_ "github.com/aweber-imbi/imbi-worker/internal/actions"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/test/chaos/chaosplugin"
	"github.com/aweber-imbi/imbi-worker/wire"
)

func main() {
	if dir := os.Getenv("IMBI_CHAOS_RECORD_DIR"); dir != "" {
		rec, err := chaosplugin.OpenFileRecorder(dir, os.Getenv("IMBI_CHAOS_FSYNC") == "1")
		if err != nil {
			fmt.Fprintln(os.Stderr, "imbi-worker-chaos:", err)
			os.Exit(1)
		}
		p := chaosplugin.New(rec)
		if url := os.Getenv("IMBI_CHAOS_KILL_NATS_URL"); url != "" {
			// RecordConfig.KillAfterMarker: kill -9 between marker and ack.
			p.WithKiller(chaosplugin.NewMarkerKiller(url, wire.DefaultDoneBucket, dir))
		}
		plugins.Register(chaosplugin.Slug, p)
		plugins.Register(chaosplugin.CredsSlug, chaosplugin.NewCreds(rec))
	}
	cli.Main()
}
