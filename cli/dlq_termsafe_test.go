package cli_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// Terminal control sequences an attacker can put in event data: OSC 52
// (set the clipboard), clear screen, CR (overwrite the line), BEL, CSI as
// a C1 character, a right-to-left override.
const (
	osc52  = "\x1b]52;c;cm0gLXJmIH4=\x07"
	clear  = "\x1b[2J"
	crBell = "\r\a"
)

// rawControl matches any byte a terminal acts on, or a C1/bidi character.
var rawControl = regexp.MustCompile("[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f\u202a-\u202e\u2066-\u2069]")

// requireTerminalSafe: only tabs and newlines of the layout itself remain.
func requireTerminalSafe(t *testing.T, out string) {
	t.Helper()
	require.False(t, rawControl.MatchString(out), "raw control character in text output: %q", out)
	require.NotContains(t, out, "\r")
}

func TestDLQTextOutputEscapesControlCharacters(t *testing.T) {
	t.Parallel()
	e := newToolEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	publish := func(subject string, h map[string]string, body string) {
		m := nats.NewMsg(subject)
		for k, v := range h {
			m.Header.Set(k, v)
		}
		m.Data = []byte(body)
		_, err := e.js.PublishMsg(ctx, m)
		require.NoError(t, err)
	}
	hostile := map[string]string{
		wire.DLQReason:          "invalid_event" + clear,
		wire.DLQLastReason:      "timeout" + osc52,
		wire.DLQError:           "boom " + osc52 + clear + "\a\u009b31m\u202eevil",
		wire.DLQAttempts:        "1",
		wire.DLQOriginalSubject: wire.DefaultSubjectPrefix + ".evil" + clear + ".act",
		wire.DLQWorker:          "w-" + osc52,
		wire.DLQDeadAt:          time.Now().UTC().Format(time.RFC3339Nano),
		"X-Evil":                "v" + osc52,
		// A binary-mode id, percent-decoded by dlq: CR and BEL arrive raw.
		wire.CEHeaderPrefix + "id": "evt%0d%07%1b%5b2J",
	}
	// The handler comes from the subject; the bodies hold CR, C1, bidi
	// (text) and ESC, BEL, CR, C1 (in a JSON string).
	publish(wire.DefaultDLQPrefix+".ev"+clear+"il.act"+osc52, hostile, "not json\r\u009b[2J\u202eX\nline2")
	publish(wire.DefaultDLQPrefix+".evil.json", hostile, `{"specversion":"1.0","id":"x","data":{"s":"\u001b[2J\u0007\r\u009b"}}`)

	list, _, err := e.runTool(t, "", "dlq", "list")
	require.NoError(t, err)
	require.Contains(t, list, `ev\x1b[2Jil#act\x1b]52;c;cm0gLXJmIH4=\x07`, "the handler, visibly escaped")
	require.Contains(t, list, `evt\r\x07\x1b[2J`, "the event id, visibly escaped")
	require.Contains(t, list, "2 dead letter(s)")
	requireTerminalSafe(t, list)

	for _, seq := range []string{"1", "2"} {
		show, _, err := e.runTool(t, "", "dlq", "show", seq)
		require.NoError(t, err)
		requireTerminalSafe(t, show)
		require.Contains(t, show, `boom \x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\x07\u009b31m\u202eevil`)
		require.Contains(t, show, `X-Evil: v\x1b]52;c;cm0gLXJmIH4=\x07`)
	}
	show, _, err := e.runTool(t, "", "dlq", "show", "1")
	require.NoError(t, err)
	require.Contains(t, show, "  line2")
	require.Contains(t, show, `not json\r\u009b[2J\u202eX`)

	stats, _, err := e.runTool(t, "", "dlq", "stats")
	require.NoError(t, err)
	require.Contains(t, stats, `invalid_event\x1b[2J`)
	requireTerminalSafe(t, stats)

	// --json escapes by itself and is unchanged.
	js, _, err := e.runTool(t, "", "dlq", "list", "--json")
	require.NoError(t, err)
	requireTerminalSafe(t, js)
	require.Contains(t, js, `\u001b[2J`)

	replay, _, err := e.runTool(t, "", "dlq", "replay", "--all", "--dry-run")
	require.NoError(t, err)
	requireTerminalSafe(t, replay)
	require.True(t, strings.Contains(replay, `evil\x1b[2J.act`), replay)
}

func TestPublishTextOutputEscapesControlCharacters(t *testing.T) {
	t.Parallel()
	e := newToolEnv(t)
	spec := strings.Replace(toolSpec, `"delivery_id": "dlv-1"`, `"delivery_id": "dlv-\u001b[2J\r\u0007"`, 1)
	out, _, err := e.runTool(t, spec, "publish")
	require.NoError(t, err)
	require.Contains(t, out, `first id dlv-\x1b[2J\r\x07`)
	requireTerminalSafe(t, out)
}
