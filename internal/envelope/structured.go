package envelope

import (
	"bytes"
	"encoding/json/jsontext"
	"errors"
	"io"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// decodeStructured reads a structured body (decision 0008): one jsontext
// pass checks it is one strict JSON object (decision 0005 §8), decodes data
// on the way (json/v2 on the same decoder; decoded reports it) and sets the
// attributes when every one is a plain string, as sdk-go's reader would
// (the oracle test compares them). Any other attribute (a number, a bool,
// data_base64, a value sdk-go rejects) leaves the attributes to sdk-go,
// which then reads the body without data (it would walk data only to copy
// it). DataEncoded is data's bytes, as sdk-go keeps them for a JSON
// datacontenttype.
func decodeStructured(ev *event.Event, body []byte, data *wiredata.ActionData, chain *jsontext.Value) (decoded bool, _ error) {
	ec := &event.EventContextV1{}
	s, err := scanTopLevel(body, ec, data, chain)
	if errors.Is(err, errRescan) { // data failed: read it as a value, Decode words the error
		*ec = event.EventContextV1{}
		s, err = scanTopLevel(body, ec, nil, nil)
	}
	if err != nil {
		return false, invalid("structured CloudEvent: %v", err)
	}
	if s.attrs {
		*ev = event.Event{Context: ec}
	} else if err := s.sdkAttributes(ev, body); err != nil {
		return false, invalid("structured CloudEvent: %v", err)
	}
	if s.cut[1] > 0 {
		ev.DataEncoded = body[s.val[0]:s.val[1]] // as in binary mode, the body's bytes
	}
	return s.decoded, checkEvent(ev)
}

// sdkAttributes has sdk-go read the attributes: the body without its data
// member, copied into a pooled buffer (sdk-go copies what it keeps).
func (s scan) sdkAttributes(ev *event.Event, body []byte) error {
	attrs := body
	if s.cut[1] > 0 {
		buf := attrBufs.Get().(*[]byte)
		defer attrBufs.Put(buf)
		*buf = append(append((*buf)[:0], body[:s.cut[0]]...), body[s.cut[1]:]...)
		attrs = *buf
	}
	return ev.UnmarshalJSON(attrs)
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

// scan is what scanTopLevel found: body[cut[0]:cut[1]] is the data member
// with one adjacent comma (cut[1] == 0: no data), body[val[0]:val[1]] its
// value; decoded: data was decoded; attrs: every attribute was set on the
// context (see attribute).
type scan struct {
	cut, val       [2]int
	decoded, attrs bool
}

// scanTopLevel checks body, locates its data member and sets attributes on
// ec. With data non-nil an object data is decoded into it and chain; when
// that fails the error is errRescan.
func scanTopLevel(body []byte, ec *event.EventContextV1, data *wiredata.ActionData, chain *jsontext.Value) (s scan, err error) {
	r := newReader(body)
	defer readers.Put(r)
	dec := &r.dec
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return s, errors.New("not a JSON object")
	}
	first, sawB64, sawSpec := true, false, false
	s.attrs = true
	for dec.PeekKind() == '"' {
		start := int(dec.InputOffset())
		quoted, err := dec.ReadValue()
		if err != nil {
			return s, err
		}
		// A slice of body (jsontext parses newReader's bytes.Buffer in
		// place) or, when escaped, a copy: it stays valid while the value
		// is read, and attribute and the switch below use it after that.
		name := unquote(quoted)
		var n int // length of the value
		isData := string(name) == "data"
		if isData && data != nil && !s.decoded && dec.PeekKind() == '{' {
			from := int(dec.InputOffset())
			if *chain, err = decodeData(dec, data); err != nil {
				return s, errRescan
			}
			n, s.decoded = len(bytes.TrimLeft(body[from:dec.InputOffset()], " \t\r\n:")), true
		} else {
			v, err := dec.ReadValue()
			if err != nil {
				return s, err
			}
			n = len(v)
			if !isData && s.attrs {
				sawSpec = sawSpec || string(name) == "specversion"
				s.attrs = attribute(ec, name, v)
			}
		}
		end := int(dec.InputOffset())
		switch string(name) {
		case "":
			return s, errors.New("empty member name") // sdk-go (jsoniter) stops reading at an empty name
		case "data_base64":
			sawB64 = true
		case "data":
			s.cut, s.val = [2]int{start, end}, [2]int{end - n, end}
			if first { // drop the comma after it instead of the one before
				rest := bytes.TrimLeft(body[end:], " \t\r\n")
				if len(rest) > 0 && rest[0] == ',' {
					s.cut[1] = len(body) - len(rest) + 1
				}
			}
		}
		first = false
	}
	if _, err := dec.ReadToken(); err != nil { // '}'
		return s, err
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the JSON object")
		}
		return s, err
	}
	if sawB64 && s.cut[1] > 0 {
		return s, errors.New("both data and data_base64")
	}
	s.attrs = s.attrs && sawSpec
	return s, nil
}

// attribute sets the structured attribute name with value v on ec as
// sdk-go's reader sets a CloudEvents 1.0 attribute of a non-empty string;
// false for anything else, which sdk-go then reads or words (a number or
// bool, an empty string, where sdk-go's result depends on member order,
// data_base64, a source or time it rejects, a bad extension name).
func attribute(ec *event.EventContextV1, name []byte, v jsontext.Value) bool {
	if v.Kind() != '"' || len(v) == 2 {
		return false
	}
	if string(name) == "specversion" {
		return string(v) == `"`+event.CloudEventsVersionV1+`"`
	}
	s := string(unquote(v))
	switch string(name) {
	case "id":
		ec.ID = s
	case "type":
		ec.Type = s
	case "source":
		u := types.ParseURIRef(s)
		if u == nil {
			return false
		}
		ec.Source = *u
	case "subject":
		ec.Subject = strPtr(s)
	case "time":
		t, err := types.ParseTimestamp(s)
		if err != nil {
			return false
		}
		ec.Time = t
	case "datacontenttype":
		ec.DataContentType = strPtr(s)
	case "dataschema":
		ec.DataSchema = types.ParseURI(s)
	case "data_base64":
		return false
	default:
		return ec.SetExtension(string(name), s) == nil
	}
	return true
}

// strPtr: &s would move every call's s to the heap.
func strPtr(s string) *string { return &s }
