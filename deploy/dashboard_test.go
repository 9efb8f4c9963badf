package deploy_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// grafanaDashboard is the subset of Grafana's dashboard JSON the file uses.
type grafanaDashboard struct {
	Title  string `json:"title"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

var metricName = regexp.MustCompile(`\bimbi_worker_[a-z0-9_]+`)

// documentedMetrics are the Prometheus names in the metrics table of
// docs/operations.md, which internal/telemetry's tests hold equal to what
// /metrics really exports.
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile("../docs/operations.md")
	require.NoError(t, err)
	out := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "| `imbi_worker_"); ok {
			name, _, _ := strings.Cut(rest, "`")
			out["imbi_worker_"+name] = true
		}
	}
	require.NotEmpty(t, out)
	return out
}

// Every series the dashboard queries exists, and every metric has a panel.
func TestGrafanaDashboardUsesRealMetrics(t *testing.T) {
	raw, err := os.ReadFile("grafana/imbi-worker.json")
	require.NoError(t, err)
	var d grafanaDashboard
	require.NoError(t, json.Unmarshal(raw, &d))
	require.NotEmpty(t, d.Panels)

	documented := documentedMetrics(t)
	used := map[string]bool{}
	for _, p := range d.Panels {
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			for _, m := range metricName.FindAllString(tg.Expr, -1) {
				family := m
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					if f, ok := strings.CutSuffix(m, suffix); ok && documented[f] {
						family = f
					}
				}
				require.True(t, documented[family], "panel %q queries %s, which the worker does not export", p.Title, m)
				used[family] = true
			}
		}
	}
	for name := range documented {
		require.True(t, used[name], "no dashboard panel shows %s", name)
	}
}
