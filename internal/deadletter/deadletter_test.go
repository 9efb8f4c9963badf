package deadletter

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// TestBuildParse: what Build writes, Parse reads back; original headers
// are kept but for sensitive values, stale Imbi-Dlq-* and Nats-Expected-*.
func TestBuildParse(t *testing.T) {
	t.Parallel()
	first := time.Date(2026, 11, 25, 12, 0, 0, 123, time.UTC)
	dead := first.Add(time.Minute)
	cases := []struct {
		name   string
		letter Letter
		want   Headers
		check  func(t *testing.T, m *nats.Msg)
	}{
		{
			name: "max attempts with last reason",
			letter: Letter{Subject: "imbi.dlq.actions.test.ok", Body: []byte("{}"), Reason: wire.ReasonMaxAttempts,
				LastReason: wire.ReasonTimeout, Error: "slow", Attempts: 5, OriginalSubject: "imbi.actions.test.ok",
				OriginalSeq: 42, FirstReceived: first, DeadAt: dead, Worker: "w-1"},
			want: Headers{Reason: "max_attempts", LastReason: "timeout", Error: "slow", Attempts: 5,
				OriginalSubject: "imbi.actions.test.ok", OriginalSeq: 42, FirstReceived: first, DeadAt: dead, Worker: "w-1"},
		},
		{
			name: "headers cleaned",
			letter: Letter{Subject: "s", Reason: wire.ReasonInvalidConfig, Redacted: []string{"data.a", "data.b"},
				Header: nats.Header{"Authorization": {"Bearer x"}, "Nats-Expected-Stream": {"IMBI_ACTIONS"},
					wire.DLQReason: {"stale"}, "imbi-dlq-worker": {"old"}, "X-Keep": {"a", "b"}}},
			want: Headers{Reason: "invalid_config", Redacted: []string{"data.a", "data.b"}},
			check: func(t *testing.T, m *nats.Msg) {
				require.Equal(t, []string{wire.Redacted}, m.Header["Authorization"])
				require.Empty(t, m.Header.Get("Nats-Expected-Stream"))
				require.Equal(t, []string{"a", "b"}, m.Header["X-Keep"])
				require.Empty(t, m.Header["imbi-dlq-worker"])
			},
		},
		{
			name:   "error on one line, bounded",
			letter: Letter{Subject: "s", Reason: wire.ReasonActionFailed, Error: "a\r\nb" + strings.Repeat("é", 2000)},
			want:   Headers{Reason: "action_failed"},
			check: func(t *testing.T, m *nats.Msg) {
				e := m.Header.Get(wire.DLQError)
				require.LessOrEqual(t, len(e), wire.DLQErrorMaxBytes)
				require.True(t, strings.HasPrefix(e, "a  b"))
				require.NotContains(t, e, "\n")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := Build(tc.letter)
			require.Equal(t, tc.letter.Subject, m.Subject)
			require.Equal(t, tc.letter.Body, m.Data)
			got := Parse(m.Header)
			if tc.check != nil {
				tc.check(t, m)
				got.Error, got.Attempts, got.OriginalSeq = tc.want.Error, tc.want.Attempts, tc.want.OriginalSeq
				got.FirstReceived, got.DeadAt, got.Worker = tc.want.FirstReceived, tc.want.DeadAt, tc.want.Worker
				got.OriginalSubject = tc.want.OriginalSubject
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestSubject(t *testing.T) {
	t.Parallel()
	const p, wp = "imbi.dlq.actions", "imbi.actions"
	cases := []struct {
		name    string
		decoded bool
		reason  wire.Reason
		handler string
		work    string
		want    string
	}{
		{"not a CloudEvent", false, wire.ReasonInvalidEvent, "", "imbi.actions.a.b", p + "._invalid"},
		{"invalid_event even with a handler", true, wire.ReasonInvalidEvent, "a#b", "imbi.actions.a.b", p + "._invalid"},
		{"from the handler", true, wire.ReasonTimeout, "github#create_issue", "imbi.actions.x.y", p + ".github.create_issue"},
		{"legacy handler", true, wire.ReasonTimeout, "github:create_issue", "imbi.actions.x.y", p + ".github.create_issue"},
		{"bad handler: work subject tail", true, wire.ReasonInvalidHandler, "NOPE", "imbi.actions.x.y", p + ".x.y"},
		{"bad handler, foreign subject", true, wire.ReasonInvalidHandler, "NOPE", "other.x", p + "._invalid"},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, Subject(p, wp, tc.decoded, tc.reason, tc.handler, tc.work), tc.name)
	}
}
