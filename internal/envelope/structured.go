package envelope

import (
	"bytes"
	"encoding/json/jsontext"
	"errors"
	"io"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// decodeStructured reads a structured body (decision 0008): one jsontext
// pass checks it is one strict JSON object (decision 0005 §8) and decodes
// data on the way (json/v2 on the same decoder; decoded reports it); sdk-go
// reads the attributes from the body without data (it would walk data only
// to copy it), and DataEncoded is data's bytes, as sdk-go keeps them for a
// JSON datacontenttype. data_base64 stays for sdk-go.
func decodeStructured(ev *event.Event, body []byte, data *wiredata.ActionData, chain *jsontext.Value) (decoded bool, _ error) {
	cut, val, decoded, err := scanTopLevel(body, data, chain)
	if errors.Is(err, errRescan) { // data failed: read it as a value, Decode words the error
		cut, val, decoded, err = scanTopLevel(body, nil, nil)
	}
	if err != nil {
		return false, invalid("structured CloudEvent: %v", err)
	}
	attrs := body
	if cut[1] > 0 { // sdk-go copies what it keeps, so the buffer is reused
		buf := attrBufs.Get().(*[]byte)
		defer attrBufs.Put(buf)
		*buf = append(append((*buf)[:0], body[:cut[0]]...), body[cut[1]:]...)
		attrs = *buf
	}
	if err := ev.UnmarshalJSON(attrs); err != nil {
		return false, invalid("structured CloudEvent: %v", err)
	}
	if cut[1] > 0 {
		ev.DataEncoded = body[val[0]:val[1]] // as in binary mode, the body's bytes
	}
	return decoded, checkEvent(ev)
}

var (
	readers  = sync.Pool{New: func() any { return new(reader) }}
	attrBufs = sync.Pool{New: func() any { return new([]byte) }}
)

var errRescan = errors.New("data does not decode")

// reader is a pooled jsontext.Decoder and the buffer it reads (jsontext
// reads a *bytes.Buffer's bytes in place).
type reader struct {
	dec jsontext.Decoder
	buf bytes.Buffer
}

func newReader(b []byte) *reader {
	r := readers.Get().(*reader)
	r.buf = *bytes.NewBuffer(b)
	r.dec.Reset(&r.buf)
	return r
}

// scanTopLevel checks body and locates its data member: body[cut[0]:cut[1]]
// is the member with one adjacent comma (cut[1] == 0: no data), and
// body[val[0]:val[1]] its value. With data non-nil an object data is
// decoded into it and chain (decoded); when that fails the error is errRescan.
func scanTopLevel(body []byte, data *wiredata.ActionData, chain *jsontext.Value) (cut, val [2]int, decoded bool, err error) {
	r := newReader(body)
	defer readers.Put(r)
	dec := &r.dec
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return cut, val, false, errors.New("not a JSON object")
	}
	first, sawB64 := true, false
	for dec.PeekKind() == '"' {
		start := int(dec.InputOffset())
		tok, err := dec.ReadToken()
		if err != nil {
			return cut, val, false, err
		}
		name := tok.String()
		var n int // length of the value
		if name == "data" && data != nil && !decoded && dec.PeekKind() == '{' {
			from := int(dec.InputOffset())
			if *chain, err = decodeData(dec, data); err != nil {
				return cut, val, false, errRescan
			}
			n, decoded = len(bytes.TrimLeft(body[from:dec.InputOffset()], " \t\r\n:")), true
		} else {
			v, err := dec.ReadValue()
			if err != nil {
				return cut, val, false, err
			}
			n = len(v)
		}
		end := int(dec.InputOffset())
		switch name {
		case "":
			return cut, val, false, errors.New("empty member name") // sdk-go (jsoniter) stops reading at an empty name
		case "data_base64":
			sawB64 = true
		case "data":
			cut, val = [2]int{start, end}, [2]int{end - n, end}
			if first { // drop the comma after it instead of the one before
				rest := bytes.TrimLeft(body[end:], " \t\r\n")
				if len(rest) > 0 && rest[0] == ',' {
					cut[1] = len(body) - len(rest) + 1
				}
			}
		}
		first = false
	}
	if _, err := dec.ReadToken(); err != nil { // '}'
		return cut, val, false, err
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the JSON object")
		}
		return cut, val, false, err
	}
	if sawB64 && cut[1] > 0 {
		return cut, val, false, errors.New("both data and data_base64")
	}
	return cut, val, decoded, nil
}
