package envelope

import (
	"bytes"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// decodeStructured reads a structured body (decision 0008). One jsontext
// pass checks the whole body is one strict JSON object (UTF-8, no
// duplicate names at any depth, nothing after it: decision 0005 §8) and
// finds the data member, decoding it into data on the way (json/v2 on the
// same decoder: data is read once); decoded reports that it did. sdk-go
// then reads the attributes from the body without data (it would
// otherwise walk data only to copy its bytes), and DataEncoded is set to
// data's bytes, which is what sdk-go keeps for a JSON datacontenttype. A
// non-JSON datacontenttype is rejected by Decode either way. data_base64
// stays in the body for sdk-go to decode.
func decodeStructured(ev *event.Event, body []byte, data *wire.ActionData) (decoded bool, _ error) {
	cut, val, decoded, err := scanTopLevel(body, data)
	if errors.Is(err, errRescan) { // data failed: read it as a value, Decode words the error
		cut, val, decoded, err = scanTopLevel(body, nil)
	}
	if err != nil {
		return false, invalid("structured CloudEvent: %v", err)
	}
	attrs := body
	if cut[1] > 0 {
		attrs = slices.Concat(body[:cut[0]], body[cut[1]:])
	}
	if err := ev.UnmarshalJSON(attrs); err != nil {
		return false, invalid("structured CloudEvent: %v", err)
	}
	if cut[1] > 0 {
		ev.DataEncoded = bytes.Clone(body[val[0]:val[1]])
	}
	return decoded, checkEvent(ev)
}

var decoders = sync.Pool{New: func() any { return new(jsontext.Decoder) }}

var (
	errNotObject = errors.New("not a JSON object")
	errEmptyName = errors.New("empty member name")
	errBothData  = errors.New("both data and data_base64")
	errRescan    = errors.New("data does not decode")
)

// scanTopLevel checks body and locates its data member: body[cut[0]:cut[1]]
// is the member with one adjacent comma (cut[1] == 0: no data), and
// body[val[0]:val[1]] its value. With data non-nil an object data is
// decoded into it (decoded); when that fails the error is errRescan.
func scanTopLevel(body []byte, data *wire.ActionData) (cut, val [2]int, decoded bool, err error) {
	dec := decoders.Get().(*jsontext.Decoder)
	defer decoders.Put(dec)
	dec.Reset(bytes.NewBuffer(body))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return cut, val, false, errNotObject
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
			var shape envelopeShape
			if jsonv2.UnmarshalDecode(dec, &shape) != nil {
				return cut, val, false, errRescan
			}
			n = len(bytes.TrimLeft(body[from:dec.InputOffset()], " \t\r\n:"))
			out, berr := shape.build()
			if berr == nil {
				*data, decoded = out, true
			}
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
			return cut, val, false, errEmptyName // sdk-go (jsoniter) stops reading at an empty name
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
		return cut, val, false, errBothData
	}
	return cut, val, decoded, nil
}
