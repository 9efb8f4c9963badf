package envelope

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/benchdata"
	"github.com/aweber-imbi/imbi-worker/wire"
)

func BenchmarkDecodeStructured(b *testing.B) { benchDecodeStructured(b, newDecoder(b)) }

// benchDecodeStructured decodes each benchmark body as a structured event.
func benchDecodeStructured(b *testing.B, dec *Decoder) {
	h := map[string][]string{"Content-Type": {wire.ContentTypeCE}, "Nats-Msg-Id": {"d-1.0"}}
	for _, c := range benchBodies(b) {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dec.Decode(h, c.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkValidateSchema(b *testing.B) {
	v, err := newValidator()
	if err != nil {
		b.Fatal(err)
	}
	data := []byte(validData)
	b.ReportAllocs()
	for b.Loop() {
		if err := v.validateSchema(data); err != nil {
			b.Fatal(err)
		}
	}
}

// benchBody is the structured CloudEvent internal/bench publishes: 1.2 KiB
// (-size 1229), the payload padded with a ~700-byte string.
func benchBody(t testing.TB) []byte {
	t.Helper()
	return benchdata.Event("d-1.0", benchdata.Size, 1764072000000000000)
}

// benchBodies: the envelope data of validData and of the benchmark's
// 1.2 KiB body, with the structured CloudEvent carrying each.
func benchBodies(b *testing.B) []struct {
	name       string
	data, body []byte
} {
	body := benchBody(b)
	var ev struct {
		Data json.RawMessage `json:"data"`
	}
	require.NoError(b, json.Unmarshal(body, &ev))
	return []struct {
		name       string
		data, body []byte
	}{
		{"validData", []byte(validData), structuredBody(b, nil)},
		{"bench1k2", ev.Data, body},
	}
}

// BenchmarkEnvelopeDecode: (*validator).decode, the envelope step of
// Decode, on both bodies.
func BenchmarkEnvelopeDecode(b *testing.B) {
	v, err := newValidator()
	require.NoError(b, err)
	for _, c := range benchBodies(b) {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := v.decode(c.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
