// Command prepublish provisions the worker's JetStream objects on a server
// (streams.Apply with the shipped defaults: work stream, dead-letter stream,
// outcome stream, done-marker bucket, durable pull consumer) and publishes N benchmark
// CloudEvents (internal/benchdata, 1.2 KiB) for -handler (bench#noop, the
// Go no-op; example-py#noop for the remote row) to
// imbi.actions.<slug>.<action>.
// `make bench-peers` (bench/cmd/peers) runs it before every contestant, so
// each one starts with the same N events waiting. It lives in the main
// module because internal/benchdata and internal/streams are internal.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aweber-imbi/imbi-worker/internal/benchdata"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/wire"
)

func main() {
	url := flag.String("url", "", "NATS URL")
	n := flag.Int("n", 100_000, "events to publish")
	size := flag.Int("size", benchdata.Size, "event body size in bytes")
	handler := flag.String("handler", benchdata.Handler, "the events' handler, <slug>#<action> (its handler_config must accept {\"label\": \"bench\"})")
	flag.Parse()
	if err := run(*url, *n, *size, *handler); err != nil {
		fmt.Fprintln(os.Stderr, "prepublish:", err)
		os.Exit(1)
	}
}

// idWidth is the fixed width of the event ids: one encoded event is the
// template, and each message overwrites only the id's bytes (encoding a
// map per message would cost ≈ 27 µs each).
const idWidth = 12

func run(url string, n, size int, handler string) error {
	slug, action, ok := strings.Cut(handler, "#")
	if !ok || slug == "" || action == "" || strings.ContainsAny(handler, ". *>") {
		return fmt.Errorf("-handler %q: want <slug>#<action>", handler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	nc, err := nats.Connect(url, nats.Name("bench-prepublish"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return err
	}
	sc := streams.DefaultConfig()
	sc.Idempotency = true // the bucket exists for the contestants that use it
	if _, err := streams.Apply(ctx, js, sc); err != nil {
		return err
	}
	mark := "ID" + strings.Repeat("X", idWidth-2)
	tmpl := benchdata.EventFor(mark, handler, size, 0)
	at := bytes.Index(tmpl, []byte(mark))
	if at < 0 {
		return fmt.Errorf("id not found in the event")
	}
	subject := sc.SubjectPrefix + "." + slug + "." + action
	for i := range n {
		id := fmt.Sprintf("%0*d", idWidth, i)
		m := nats.NewMsg(subject)
		m.Header.Set(wire.HeaderContentType, wire.ContentTypeCE)
		m.Header.Set(wire.HeaderMsgID, "b-"+strconv.Itoa(i))
		m.Data = append([]byte(nil), tmpl...)
		copy(m.Data[at:], id)
		if _, err := js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute)); err != nil {
			return err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return fmt.Errorf("publishes not acknowledged: %w", ctx.Err())
	}
	s, err := js.Stream(ctx, sc.Stream)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs != uint64(n) {
		return fmt.Errorf("stream holds %d messages, want %d", info.State.Msgs, n)
	}
	fmt.Printf("published %d events of %d B to %s\n", n, len(tmpl), subject)
	return nil
}
