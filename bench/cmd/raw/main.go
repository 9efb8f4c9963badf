// Command raw is the ceiling contestant of `make bench-peers`: a
// JetStream pull consumer (nats.go's Consume with its defaults) on the
// worker's durable consumer that acks every message and does nothing
// else, until SIGINT/SIGTERM.
//
// With -stored SUBJECT it is the floor of a per-message outcome event
// (issue 16): before each ack it publishes one 1-byte message without
// headers to SUBJECT (a stream's, e.g. IMBI_OUTCOMES') and acks only once
// the stream acknowledged it, as the worker acks only after its outcome
// is stored. Its cost over raw is what any event stored per message
// costs, whatever the event says. With -stored-unacked it publishes the
// same message without a reply subject and acks at once: the stream still
// stores every message, but nothing acknowledges it, which is the floor
// of any scheme that acknowledges outcomes in groups (fast-ingest batches).
package main

import (
	"context"
	"errors"
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
	stored := flag.String("stored", "", "publish a 1-byte message to this stream subject before each ack and ack once it is stored (the floor of an outcome event)")
	unacked := flag.Bool("stored-unacked", false, "with -stored: publish without a reply subject and ack at once (stored, never acknowledged)")
	flag.Parse()
	pprofenv.Start()
	if err := run(*url, *stream, *consumer, *reverse, *stored, *unacked); err != nil {
		fmt.Fprintln(os.Stderr, "raw:", err)
		os.Exit(1)
	}
}

func run(url, stream, consumer string, reverse int, stored string, unacked bool) error {
	if stored != "" && reverse > 1 {
		// The reverse-order acks replace the handler: -stored would be
		// silently ignored.
		return errors.New("-stored and -ack-reverse are separate experiments; use one")
	}
	if unacked && stored == "" {
		return errors.New("-stored-unacked needs -stored SUBJECT")
	}
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
	switch {
	case stored != "" && unacked:
		body := []byte{'x'}
		handle = func(m jetstream.Msg) {
			_ = nc.Publish(stored, body)
			_ = m.Ack()
		}
	case stored != "":
		handle = storeThenAck(ctx, js, stored)
	}
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

// storeThenAck returns a handler that publishes a 1-byte message to
// subject and acks the delivery once the stream acknowledged it: one
// goroutine awaits the acknowledgements in publish order, as the worker's
// done-marker writer does.
func storeThenAck(ctx context.Context, js jetstream.JetStream, subject string) func(jetstream.Msg) {
	type pending struct {
		msg jetstream.Msg
		f   jetstream.PubAckFuture
	}
	q := make(chan pending, 1024)
	body := []byte{'x'}
	go func() {
		for p := range q {
			select {
			case <-p.f.Ok():
				_ = p.msg.Ack()
			case err := <-p.f.Err():
				fmt.Fprintln(os.Stderr, "raw: stored publish failed:", err)
				_ = p.msg.Nak()
			case <-ctx.Done():
				return
			}
		}
	}()
	return func(m jetstream.Msg) {
		f, err := js.PublishAsync(subject, body)
		if err != nil {
			fmt.Fprintln(os.Stderr, "raw: stored publish failed:", err)
			_ = m.Nak()
			return
		}
		q <- pending{m, f}
	}
}
