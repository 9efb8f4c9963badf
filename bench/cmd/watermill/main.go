// Command watermill is the framework contestant of `make bench-peers`:
// a Watermill router with a no-op handler on watermill-nats' JetStream
// subscriber (nats.go's jetstream API, AckAsync: a plain ack instead of a
// double ack) bound to the worker's durable consumer, until
// SIGINT/SIGTERM. Watermill is a dependency of the bench module only.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ThreeDotsLabs/watermill"
	wmjs "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aweber-imbi/imbi-worker/bench/internal/pprofenv"
)

func main() {
	url := flag.String("url", nats.DefaultURL, "NATS URL")
	stream := flag.String("stream", "IMBI_ACTIONS", "stream (the Watermill topic)")
	consumer := flag.String("consumer", "imbi-worker", "durable pull consumer")
	flag.Parse()
	pprofenv.Start()
	if err := run(*url, *stream, *consumer); err != nil {
		fmt.Fprintln(os.Stderr, "watermill:", err)
		os.Exit(1)
	}
}

func run(url, stream, consumer string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := watermill.NopLogger{}
	nc, err := nats.Connect(url, nats.Name("bench-watermill"))
	if err != nil {
		return err
	}
	defer nc.Close()
	sub, err := wmjs.NewSubscriber(wmjs.SubscriberConfig{
		Conn:     nc,
		Logger:   logger,
		AckAsync: true,
		// The stream and durable consumer exist (provisioned as the worker
		// provisions them); bind to them.
		ResourceInitializer: wmjs.ExistingConsumer(func(string, string) jetstream.ConsumerConfig {
			return jetstream.ConsumerConfig{Name: consumer}
		}, ""),
	})
	if err != nil {
		return err
	}
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return err
	}
	router.AddConsumerHandler("noop", stream, sub, func(*message.Message) error { return nil })
	return router.Run(ctx)
}
