package envelope

import (
	"bytes"
	"encoding/json/jsontext"
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"
)

// decodeStructured reads a structured body (decision 0008). One jsontext
// pass checks the whole body is one strict JSON object (UTF-8, no
// duplicate names at any depth, nothing after it: decision 0005 §8) and
// finds the data member; sdk-go then reads the attributes from the body
// without data (it would otherwise walk data only to copy its bytes), and
// DataEncoded is set to data's bytes, which is what sdk-go keeps for a JSON
// datacontenttype. A non-JSON datacontenttype is rejected by Decode either
// way. data_base64 stays in the body for sdk-go to decode.
func decodeStructured(ev *event.Event, body []byte) error {
	cut, val, err := scanTopLevel(body)
	if err != nil {
		return invalid("structured CloudEvent: %v", err)
	}
	attrs := body
	if cut[1] > 0 {
		attrs = slices.Concat(body[:cut[0]], body[cut[1]:])
	}
	if err := ev.UnmarshalJSON(attrs); err != nil {
		return invalid("structured CloudEvent: %v", err)
	}
	if cut[1] > 0 {
		ev.DataEncoded = bytes.Clone(body[val[0]:val[1]])
	}
	return checkEvent(ev)
}

var decoders = sync.Pool{New: func() any { return new(jsontext.Decoder) }}

var (
	errNotObject = errors.New("not a JSON object")
	errEmptyName = errors.New("empty member name")
	errBothData  = errors.New("both data and data_base64")
)

// scanTopLevel checks body and locates its data member: body[cut[0]:cut[1]]
// is the member with one adjacent comma (cut[1] == 0: no data), and
// body[val[0]:val[1]] its value.
func scanTopLevel(body []byte) (cut, val [2]int, err error) {
	dec := decoders.Get().(*jsontext.Decoder)
	defer decoders.Put(dec)
	dec.Reset(bytes.NewBuffer(body))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return cut, val, errNotObject
	}
	first, sawB64 := true, false
	for dec.PeekKind() == '"' {
		start := int(dec.InputOffset())
		tok, err := dec.ReadToken()
		if err != nil {
			return cut, val, err
		}
		name := tok.String()
		v, err := dec.ReadValue()
		if err != nil {
			return cut, val, err
		}
		end := int(dec.InputOffset())
		switch name {
		case "":
			return cut, val, errEmptyName // sdk-go (jsoniter) stops reading at an empty name
		case "data_base64":
			sawB64 = true
		case "data":
			cut, val = [2]int{start, end}, [2]int{end - len(v), end}
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
		return cut, val, err
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the JSON object")
		}
		return cut, val, err
	}
	if sawB64 && cut[1] > 0 {
		return cut, val, errBothData
	}
	return cut, val, nil
}
