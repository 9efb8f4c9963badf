package publisher_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/aweber-imbi/imbi-worker/publisher"
)

// benchMessage is about 1.2 KiB on the wire in structured mode, the size
// the worker benchmark uses.
func benchMessage() publisher.Message {
	m := sampleMessage()
	m.Data.Event.Payload["commits"] = strings.Repeat("x", 500)
	return m
}

func BenchmarkNewEventAndEncode(b *testing.B) {
	m := benchMessage()
	ctx := context.Background()
	for _, mode := range []publisher.Mode{publisher.Structured, publisher.Binary} {
		b.Run(mode.String(), func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for i := range b.N {
				m.ID = "bench." + strconv.Itoa(i)
				ev, err := publisher.NewEvent(m)
				if err != nil {
					b.Fatal(err)
				}
				msg, err := publisher.EncodeMsg(ctx, ev, "imbi.actions.github.create_issue", mode)
				if err != nil {
					b.Fatal(err)
				}
				size = len(msg.Data)
			}
			b.ReportMetric(float64(size), "body-bytes")
		})
	}
}

// BenchmarkPublishAsync: publisher throughput into a real embedded
// JetStream (file store), acks included (Wait at the end).
func BenchmarkPublishAsync(b *testing.B) {
	nc, _, _ := runJetStreamB(b)
	p, err := publisher.New(nc, publisher.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	m := benchMessage()
	b.ResetTimer()
	for i := range b.N {
		m.ID = "bench." + strconv.Itoa(i)
		if _, err := p.PublishAsync(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := p.Wait(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
