package envelope

import (
	"testing"

	"github.com/aweber-imbi/imbi-worker/wire"
)

func BenchmarkDecodeStructured(b *testing.B) {
	dec := newDecoder(b)
	body := structuredBody(b, nil)
	h := map[string][]string{"Content-Type": {wire.ContentTypeCE}, "Nats-Msg-Id": {"d-1.0"}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.Decode(h, body); err != nil {
			b.Fatal(err)
		}
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

// BenchmarkEnvelopeGeneric and BenchmarkEnvelopeFast compare the two
// envelope paths on the same data (docs/performance.md).
func BenchmarkEnvelopeGeneric(b *testing.B) {
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
		if _, err := referenceDecode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEnvelopeFast(b *testing.B) {
	data := []byte(validData)
	b.ReportAllocs()
	for b.Loop() {
		if !fastValid(data) {
			b.Fatal("not fast-valid")
		}
		if _, ok := fastDecode(data); !ok {
			b.Fatal("not fast-decoded")
		}
	}
}
