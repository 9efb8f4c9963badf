package cli

import (
	"context"

	"github.com/aweber-imbi/imbi-worker/internal/console"
	"github.com/aweber-imbi/imbi-worker/internal/lanes"
)

// consoleLanes is the console's LaneStore on the imbi_lanes bucket.
type consoleLanes struct{ s *lanes.Store }

var _ console.LaneStore = consoleLanes{}

func (c consoleLanes) List(ctx context.Context) ([]console.Lane, error) {
	states, err := c.s.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]console.Lane, 0, len(states))
	for _, st := range states {
		out = append(out, console.Lane{LaneKey: console.LaneKey{Plugin: st.Plugin, PluginID: st.PluginID},
			Paused: true, PausedUntil: st.PausedUntil, Reason: st.Reason, SetBy: st.SetBy, SetAt: st.SetAt})
	}
	return out, nil
}

func (c consoleLanes) Pause(ctx context.Context, p console.PauseRequest) error {
	return c.s.Pause(ctx, lanes.PauseRequest{Lane: lanes.Key{Plugin: p.Lane.Plugin, PluginID: p.Lane.PluginID},
		Until: p.Until, Reason: p.Reason, By: p.By})
}

func (c consoleLanes) Resume(ctx context.Context, key console.LaneKey, by string) error {
	return c.s.Resume(ctx, lanes.Key{Plugin: key.Plugin, PluginID: key.PluginID}, by)
}
