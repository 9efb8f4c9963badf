// Command imbi-worker-chaos is imbi-worker plus the test-only chaos plugins
// (test/chaos/chaosplugin), assembled like any custom build: cli.Main after
// registering plugins. The crash suite runs it as real processes; it is
// never shipped.
//
// IMBI_CHAOS_RECORD_DIR names the directory where the record action appends
// the CloudEvent ids it ran for (one runs-<pid>.log per process);
// IMBI_CHAOS_FSYNC=1 fsyncs every record.
package main

import (
	"fmt"
	"os"

	"github.com/aweber-imbi/imbi-worker/cli"
	_ "github.com/aweber-imbi/imbi-worker/internal/actions"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/test/chaos/chaosplugin"
)

func main() {
	if dir := os.Getenv("IMBI_CHAOS_RECORD_DIR"); dir != "" {
		rec, err := chaosplugin.OpenFileRecorder(dir, os.Getenv("IMBI_CHAOS_FSYNC") == "1")
		if err != nil {
			fmt.Fprintln(os.Stderr, "imbi-worker-chaos:", err)
			os.Exit(1)
		}
		plugins.Register(chaosplugin.Slug, chaosplugin.New(rec))
		plugins.Register(chaosplugin.CredsSlug, chaosplugin.NewCreds(rec))
	}
	cli.Main()
}
