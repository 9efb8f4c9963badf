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
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aweber-imbi/imbi-worker/bench/internal/pprofenv"
)

func main() {
	url := flag.String("url", nats.DefaultURL, "NATS URL")
	stream := flag.String("stream", "IMBI_ACTIONS", "stream")
	consumer := flag.String("consumer", "imbi-worker", "durable pull consumer")
	flag.Parse()
	pprofenv.Start()
	if err := run(*url, *stream, *consumer); err != nil {
		fmt.Fprintln(os.Stderr, "raw:", err)
		os.Exit(1)
	}
}

func run(url, stream, consumer string) error {
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
	cc, err := cons.Consume(func(m jetstream.Msg) { _ = m.Ack() })
	if err != nil {
		return err
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}
