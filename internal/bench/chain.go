package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// chainSteps is the length of the benchmark's chains.
const chainSteps = 3

// chainBody is the first step of a 3-step chain of bench#noop (wire
// contract §A): the single-message body with data.chain added.
func chainBody(tmpl *bodyTemplate, id string) ([]byte, error) {
	var ev map[string]any
	if err := json.Unmarshal(tmpl.build(id, 0), &ev); err != nil {
		return nil, err
	}
	next := make([]any, 0, chainSteps-1)
	for s := 1; s < chainSteps; s++ {
		next = append(next, map[string]any{
			"rule":   map[string]any{"id": "r-" + strconv.Itoa(s), "handler": "bench#noop", "handler_config": map[string]any{"label": "bench"}, "ordinal": s},
			"plugin": map[string]any{"id": "pl-1", "slug": "bench"},
		})
	}
	ev["data"].(map[string]any)["chain"] = map[string]any{"id": id, "position": 0, "next": next}
	return json.Marshal(ev)
}

// chainPipeline: N steps as N/3 pre-published 3-step chains through the
// full worker (idempotency on, the default); the rate in steps per second
// and the process CPU per step (µs), to set against the "on" phase.
func (e *env) chainPipeline(o options) (float64, float64, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sc := benchStreams("chain", true)
	if err := e.provision(ctx, sc); err != nil {
		return 0, 0, err
	}
	chains := o.n / chainSteps
	steps := chains * chainSteps
	tmpl := newBodyTemplate(o.size)
	for i := range chains {
		id := "chain-" + strconv.Itoa(i)
		b, err := chainBody(tmpl, id)
		if err != nil {
			return 0, 0, err
		}
		m := nats.NewMsg(sc.SubjectPrefix + ".bench.noop")
		m.Header.Set(wire.HeaderContentType, wire.ContentTypeCE)
		m.Header.Set(wire.HeaderMsgID, id)
		m.Data = b
		if _, err := e.js.PublishMsgAsync(m); err != nil {
			return 0, 0, err
		}
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		return 0, 0, fmt.Errorf("preload stalled")
	}
	elapsed, cpuPer, err := e.drain(ctx, o, sc, "chain", steps, "steps")
	if err != nil {
		return 0, 0, err
	}
	fmt.Printf("  chains: %.1f µs CPU per step (process: server + worker), %d chains of %d steps\n", cpuPer, chains, chainSteps)
	return float64(steps) / elapsed.Seconds(), cpuPer, nil
}
