package cli_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// TestDLQChainColumns: dlq list, show and stats show a letter's chain id
// and position, and --chain selects one chain's steps.
func TestDLQChainColumns(t *testing.T) {
	t.Parallel()
	e := newToolEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	letters := []struct {
		chain     string
		position  int
		continued bool
	}{{"d-1.p-1", 1, true}, {"d-1.p-1", 2, false}, {"d-2.p-1", 0, false}, {"", 0, false}}
	for i, l := range letters {
		id := "ev-" + strconv.Itoa(i)
		m := nats.NewMsg(wire.DefaultDLQPrefix + ".http.request")
		m.Header.Set(wire.HeaderContentType, wire.ContentTypeCE)
		m.Header.Set(wire.HeaderMsgID, id)
		m.Data = []byte(`{"specversion":"1.0","id":"` + id + `","type":"io.imbi.webhook.action.v1","source":"/s","data":{}}`)
		m.Header.Set(wire.DLQReason, string(wire.ReasonActionFailed))
		m.Header.Set(wire.DLQOriginalSubject, wire.DefaultSubjectPrefix+".http.request")
		if l.chain != "" {
			m.Header.Set(wire.DLQChainID, l.chain)
			m.Header.Set(wire.DLQChainPosition, strconv.Itoa(l.position))
			if l.continued {
				m.Header.Set(wire.DLQChainContinued, "true")
			}
		}
		_, err := e.js.PublishMsg(ctx, m)
		require.NoError(t, err)
	}

	type chainJSON struct {
		Seq       uint64 `json:"seq"`
		ChainID   string `json:"chain_id"`
		Position  *int   `json:"chain_position"`
		Continued bool   `json:"chain_continued"`
	}
	for _, tc := range []struct {
		chain string
		want  int
	}{{"", 4}, {"d-1.p-1", 2}, {"d-2.p-1", 1}, {"nope", 0}} {
		t.Run("list --chain "+tc.chain, func(t *testing.T) {
			args := []string{"dlq", "list", "--json"}
			if tc.chain != "" {
				args = append(args, "--chain", tc.chain)
			}
			out, _, err := e.runTool(t, "", args...)
			require.NoError(t, err)
			got := decodeJSON[[]chainJSON](t, out)
			require.Len(t, got, tc.want)
			for _, l := range got {
				if tc.chain != "" {
					require.Equal(t, tc.chain, l.ChainID)
					require.NotNil(t, l.Position)
				}
			}
		})
	}

	out, _, err := e.runTool(t, "", "dlq", "list", "--chain", "d-1.p-1")
	require.NoError(t, err)
	require.Contains(t, out, "CHAIN")
	require.Contains(t, out, "d-1.p-1@1+")
	require.Contains(t, out, "d-1.p-1@2 ")

	out, _, err = e.runTool(t, "", "dlq", "show", "1")
	require.NoError(t, err)
	require.Regexp(t, `chain id:\s+d-1.p-1`, out)
	require.Regexp(t, `chain position:\s+1`, out)
	require.Regexp(t, `chain continued:\s+true`, out)
	out, _, err = e.runTool(t, "", "dlq", "show", "4")
	require.NoError(t, err)
	require.NotContains(t, out, "chain id")

	out, _, err = e.runTool(t, "", "dlq", "stats")
	require.NoError(t, err)
	require.Contains(t, out, "BY CHAIN AND POSITION")
	require.Regexp(t, `(?m)^d-1\.p-1\s+2\s`, out)
	require.True(t, strings.Contains(out, "d-2.p-1 0"), out)

	out, _, err = e.runTool(t, "", "dlq", "stats", "--chain", "d-2.p-1", "--json")
	require.NoError(t, err)
	require.Equal(t, 1, decodeJSON[struct {
		Total int `json:"total"`
	}](t, out).Total)
}

// TestPublishChainSpec: a spec with several rules publishes the first
// with data.chain holding the rest; --count refuses to copy a chain.
func TestPublishChainSpec(t *testing.T) {
	t.Parallel()
	e := newToolEnv(t)
	spec := `{"delivery_id": "d-9", "on_failure": "stop",
	  "data": {"context": {"project_id": "p-1", "project_slug": "checkout", "org_slug": "acme"},
	           "event": {"metadata": {"webhook_id": "wh-1"}, "payload": {}}},
	  "rules": [
	    {"rule": {"handler": "gateway-actions#create_release", "ordinal": 0}, "plugin": {"id": "pl-2", "slug": "gateway-actions"}},
	    {"rule": {"handler": "gateway-actions#add_deployment_event", "ordinal": 1, "handler_config": {"x": 1}}},
	    {"rule": {"handler": "http:request", "ordinal": 5}}
	  ]}`
	_, _, err := e.runTool(t, spec, "publish")
	require.NoError(t, err)
	msgs := e.workMsgs(t)
	require.Len(t, msgs, 1)
	require.Equal(t, wire.DefaultSubjectPrefix+".gateway-actions.create_release", msgs[0].Subject)
	require.Equal(t, "d-9.0", msgs[0].Header.Get(wire.HeaderMsgID))
	var ev struct {
		Data struct {
			Rule  wire.Rule  `json:"rule"`
			Chain wire.Chain `json:"chain"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(msgs[0].Data, &ev))
	require.Equal(t, "gateway-actions#create_release", ev.Data.Rule.Handler)
	require.Equal(t, wire.Chain{ID: "d-9.p-1", Position: 0, OnFailure: "stop", Next: []wire.ChainStep{
		{Rule: wire.Rule{Handler: "gateway-actions#add_deployment_event", Ordinal: 1, HandlerConfig: json.RawMessage(`{"x":1}`)}},
		{Rule: wire.Rule{Handler: "http#request", Ordinal: 5}},
	}}, ev.Data.Chain)

	_, _, err = e.runTool(t, spec, "publish", "--count", "2")
	require.ErrorContains(t, err, "--count cannot copy a chain")
	_, _, err = e.runTool(t, strings.Replace(spec, `"ordinal": 5`, `"ordinal": 1`, 1), "publish")
	require.ErrorContains(t, err, "ordinal")
}
