package chain

import (
	"strings"
	"testing"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// FuzzDecodeChain: Parse never panics, every error names data.chain (the
// envelope decoder dead-letters it invalid_event), and what it accepts is
// within the bounds.
func FuzzDecodeChain(f *testing.F) {
	f.Add(`{"id":"d-1.p-1","position":0,"on_failure":"continue","next":[{"rule":{"handler":"a#b","ordinal":1}}]}`, "d-1.0", 0)
	f.Add(`{"id":"c","position":1}`, "c.0", 0)
	f.Add(`{"id":"c","position":0,"next":[{"rule":{"handler":"a:b","ordinal":1,"handler_config":"{}"},"plugin":null}]}`, "x", 0)
	f.Add(`null`, "x", 0)
	f.Add(`{"id":"c","position":0,"next":[{"rule":{"handler":"a#b","ordinal":-1}}]}`, "x", 0)
	f.Fuzz(func(t *testing.T, chain, ceID string, ordinal int) {
		c, err := Parse([]byte(chain), ceID, wire.Rule{Handler: "a#b", Ordinal: ordinal})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "data.chain") {
				t.Fatalf("error %q does not name data.chain", err)
			}
			return
		}
		if c == nil {
			return
		}
		if c.ID == "" || c.Position < 0 || c.Position+1+len(c.Next) > wire.MaxChainSteps {
			t.Fatalf("accepted an out-of-bounds chain: %+v", c)
		}
		if c.Position > 0 && ceID != wire.ChainStepID(c.ID, ordinal) {
			t.Fatalf("accepted a later step whose id %q does not match", ceID)
		}
		prev := ordinal
		for _, s := range c.Next {
			if _, err := wire.ParseHandler(s.Rule.Handler); err != nil || s.Rule.Ordinal <= prev {
				t.Fatalf("accepted a bad next step: %+v", s)
			}
			prev = s.Rule.Ordinal
		}
	})
}
