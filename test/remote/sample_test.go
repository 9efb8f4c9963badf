package remote_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testdata/events/remote/18 (the demo's Python sample) published with
// `imbi-worker publish` completes through a host.
func TestRemoteSample(t *testing.T) {
	e := newEnv(t)
	w := startWorker(t, e.url, workerOpts{})
	startHost(t, e.nc, e.url, "host")
	w.waitLog(t, "remote plugin catalog loaded", 10*time.Second)
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "testdata/events/remote/18-remote-python-action.json"))
	require.NoError(t, err)
	spec := filepath.Join(dir, "18.json")
	require.NoError(t, os.WriteFile(spec, []byte(strings.ReplaceAll(string(raw), "@DEMO_TMP@", dir)), 0o600))
	out, err := exec.Command(worker(t), "publish", "--nats-url", e.url, spec).CombinedOutput()
	require.NoError(t, err, "%s", out)
	e.waitDone("demo-18.0", 20*time.Second)
	recs := records(t, filepath.Join(dir, "remote-calls.jsonl"))
	require.Len(t, recs, 1)
	require.Equal(t, "ran in imbi-plugin-host", recs[0]["note"])
}
