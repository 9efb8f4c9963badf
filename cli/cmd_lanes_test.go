package cli_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type lanesOut struct {
	Lanes []struct {
		Plugin      string     `json:"plugin"`
		PluginID    string     `json:"plugin_id"`
		Paused      bool       `json:"paused"`
		PausedUntil *time.Time `json:"paused_until"`
		Reason      string     `json:"reason"`
		SetBy       string     `json:"set_by"`
	} `json:"lanes"`
}

func TestLanesCommands(t *testing.T) {
	t.Parallel()
	e := newToolEnv(t)
	run := func(args ...string) string {
		t.Helper()
		out, errOut, err := e.runTool(t, "", args...)
		require.NoError(t, err, errOut)
		return out
	}
	out := run("lanes", "list")
	require.Equal(t, "no lane is paused\n", out)

	// By hand: until resumed, every lane of the plugin; a handler names its plugin's lane.
	require.Contains(t, run("lanes", "pause", "--handler", "github#create_issue", "--reason", "outage"+osc52+clear), "paused github until resumed")
	require.Contains(t, run("lanes", "pause", "--plugin", "slack", "--plugin-id", "pl-7", "--until", "2h"), "paused slack/pl-7 until ")

	got := decodeJSON[lanesOut](t, run("lanes", "list", "--json"))
	require.Len(t, got.Lanes, 2)
	require.Equal(t, "github", got.Lanes[0].Plugin)
	require.Empty(t, got.Lanes[0].PluginID)
	require.Nil(t, got.Lanes[0].PausedUntil, "a manual pause never expires without --until")
	require.Equal(t, "outage"+osc52+clear, got.Lanes[0].Reason)
	require.Contains(t, got.Lanes[0].SetBy, "cli")
	require.Equal(t, "slack", got.Lanes[1].Plugin)
	require.Equal(t, "pl-7", got.Lanes[1].PluginID)
	require.WithinDuration(t, time.Now().Add(2*time.Hour), *got.Lanes[1].PausedUntil, time.Minute)

	text := run("lanes", "list")
	requireTerminalSafe(t, text)
	require.Contains(t, text, `outage\x1b]52;c;`)
	require.Contains(t, text, "resumed by hand")

	only := decodeJSON[lanesOut](t, run("lanes", "list", "--plugin", "slack", "--json"))
	require.Len(t, only.Lanes, 1)

	require.Contains(t, run("lanes", "resume", "--plugin", "github"), "resumed github")
	require.Contains(t, run("lanes", "resume", "--handler", "slack#post"), "resumed slack") // every lane of slack
	require.Empty(t, decodeJSON[lanesOut](t, run("lanes", "list", "--json")).Lanes)

	for _, bad := range [][]string{
		{"lanes", "pause"},
		{"lanes", "pause", "--plugin", "x", "--until", "yesterday"},
		{"lanes", "pause", "--plugin", "x", "--until", "2001-01-01T00:00:00Z"},
		{"lanes", "pause", "--plugin-id", "pl-1"},
		{"lanes", "pause", "--plugin", "x", "--handler", "y#z"},
		{"lanes", "resume"},
	} {
		_, _, err := e.runTool(t, "", bad...)
		require.Error(t, err, "%v", bad)
	}
}

func TestLanesPauseJSON(t *testing.T) {
	t.Parallel()
	e := newToolEnv(t)
	out, errOut, err := e.runTool(t, "", "lanes", "pause", "--plugin", "github", "--json")
	require.NoError(t, err, errOut)
	got := decodeJSON[map[string]any](t, out)
	require.Equal(t, map[string]any{"plugin": "github"}, got["paused"])
	require.NotContains(t, got, "until", "a pause until resumed has no end")
	require.Contains(t, got["by"], "cli")
}
