// Command raw is the ceiling contestant of `make bench-peers`: a
// JetStream pull consumer (nats.go's Consume with its defaults) on the
// worker's durable consumer that acks every message and does nothing
// else, until SIGINT/SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aweber-imbi/imbi-worker/bench/internal/pprofenv"
)

func main() {
	url := flag.String("url", nats.DefaultURL, "NATS URL")
	stream := flag.String("stream", "IMBI_ACTIONS", "stream")
	consumer := flag.String("consumer", "imbi-worker", "durable pull consumer")
	reverse := flag.Int("ack-reverse", 0, "experiment: hold this many messages and ack them in reverse delivery order (0: ack each at once)")
	flag.Parse()
	pprofenv.Start()
	if err := run(*url, *stream, *consumer, *reverse); err != nil {
		fmt.Fprintln(os.Stderr, "raw:", err)
		os.Exit(1)
	}
}

func run(url, stream, consumer string, reverse int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	nc, err := nats.Connect(url, nats.Name("bench-raw"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cons, err := js.Consumer(ctx, stream, consumer)
	if err != nil {
		return err
	}
	handle := func(m jetstream.Msg) { _ = m.Ack() }
	if reverse > 1 {
		// Out-of-order acks, as several concurrent slots produce them: the
		// server's cost of interior deletes in a work-queue stream.
		var mu sync.Mutex
		var held []jetstream.Msg
		flush := func() {
			for i := len(held) - 1; i >= 0; i-- {
				_ = held[i].Ack()
			}
			held = held[:0]
		}
		handle = func(m jetstream.Msg) {
			mu.Lock()
			defer mu.Unlock()
			if held = append(held, m); len(held) == reverse {
				flush()
			}
		}
		go func() { // the tail of the drain
			for range time.Tick(50 * time.Millisecond) {
				mu.Lock()
				flush()
				mu.Unlock()
			}
		}()
	}
	cc, err := cons.Consume(handle)
	if err != nil {
		return err
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}
