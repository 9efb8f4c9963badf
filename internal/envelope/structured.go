package envelope

import (
	"encoding/binary"
	"strings"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// The structured fast path. sdk-go's (*event.Event).UnmarshalJSON reads
// the CloudEvent attributes, and for a JSON (or absent) datacontenttype
// it walks the whole data value with jsoniter's SkipAndReturnBytes only
// to copy its raw bytes into DataEncoded (event_unmarshal.go, consumeData
// and consumeDataAsBytes): ~60 % of the unmarshal, ~17 % of a message's
// CPU in the worker benchmark. The envelope decoder then parsed data
// again, strictly. So when it is certain of the outcome, decodeStructured
// has sdk-go unmarshal the body WITHOUT the data member and sets
// DataEncoded itself, to the bytes sdk-go would have copied.
//
// scanStructured decides "certain" in one pass over the top-level object.
// The members are checked by the strict JSON scanner of the envelope
// decoder (fastpath.go). The data value is decoded right there by the
// one-pass envelope decoder (decodeFastAt), which finds where it ends and
// whose result Decode then uses instead of decoding data again; when that
// decoder is not sure of the envelope, the value is only skipped (string-
// and bracket-aware, skipDataObject) and Decode validates it afterwards,
// by the generic path. The scan declines (the body goes to sdk-go whole,
// as before) on anything that makes sdk-go handle data otherwise, or
// where sdk-go and a plain reading of the object could disagree on which
// member is data:
//
//   - a body that is not a JSON object (after JSON whitespace) or that is
//     malformed up to its closing brace (sdk-go words the error);
//   - data absent, repeated, or not an object (the envelope must be an
//     object, so the event is invalid anyway);
//   - data_base64 present;
//   - a member name that is empty (jsoniter's ReadObject loop in sdk-go
//     stops at an empty name, ignoring the rest) or has escapes
//     ("d\u0061ta" is data to sdk-go);
//   - specversion other than the plain string "1.0", or repeated (0.3
//     handles data by other rules);
//   - datacontenttype not a plain string, repeated, or not JSON by
//     sdk-go's own rule (sdkIsJSON: then sdk-go decodes data as a string);
//   - in data: a number with an exponent (jsoniter skips a number
//     starting with 0 as a float32 and fails on one out of float32 range,
//     e.g. 0.5e39, which strict JSON and the envelope decoder accept), or
//     nesting deeper than maxDepth.
//
// Why it is safe: a fast result is only kept when the whole Decode
// succeeds, and then the envelope decoder (one-pass or generic) accepted
// the data span as strict JSON, an object. A strict JSON value has one
// end, so jsoniter's Skip, which accepts every strict JSON object without
// exponents nested at most maxDepth deep, would have stopped exactly
// there, and sdk-go would have set DataEncoded to the same bytes (from
// just after the colon: jsoniter's capture includes the whitespace
// before the value); the envelope decoded from it is the same, the
// decoders being functions of those bytes. Every other member is the same
// in both bodies and parsed by sdk-go either way; data's position among
// them does not matter for a JSON media type (cached or consumed, it is
// the raw bytes). When anything fails after a fast decode (sdk-go on the
// stripped body, the attribute checks, the type, the envelope), Decode
// runs again without the fast path, so errors, their wording and the
// partial Message are exactly those of the full path. Failures cost two
// decodes; they are permanent and rare.
//
// TestStructuredFastPathEquivalence, TestStructuredFastPathMutations and
// FuzzStructuredFastPathEquivalence compare Decode with and without the
// fast path (reflect.DeepEqual on the Message; on failure the same
// reason and error text).

// structuredSpan locates the data member of a structured body.
type structuredSpan struct {
	// cutStart, cutEnd: body[cutStart:cutEnd] is the data member with
	// one adjacent comma; the body without it is still one JSON object.
	cutStart, cutEnd int
	// valStart, valEnd: body[valStart:valEnd] is what sdk-go copies into
	// DataEncoded: from just after the colon, through the value.
	valStart, valEnd int
}

// scanStructured finds the data member of a structured CloudEvent body;
// ok is false when the fast path must not be used (see above). With
// data non-nil it also decodes the envelope by decodeFastAt when that is
// sure of it (decoded), which finds the end of data as it goes.
func scanStructured(body []byte, data *wiredata.ActionData) (span structuredSpan, decoded, ok bool) {
	sc := onePass{data: body}
	more, ok := sc.openObject()
	if !ok || !more {
		return span, false, false
	}
	var sawData, sawSpec, sawCT bool
	lastComma := -1
	for more {
		sc.ws()
		memberStart := sc.pos
		name, escaped, ok := sc.key()
		if !ok || escaped || len(name) == 0 {
			return span, false, false
		}
		isData := false
		switch string(name) {
		case "data":
			valStart := sc.pos // just past the colon
			if sawData || sc.peek() != '{' {
				return span, false, false
			}
			sawData, isData = true, true
			end := -1
			if data != nil {
				if end, decoded = decodeFastAt(body, sc.pos, data); !decoded {
					end = -1
				}
			}
			if end < 0 {
				if end = skipDataObject(body, sc.pos); end < 0 {
					return span, false, false
				}
			}
			sc.pos = end
			span = structuredSpan{cutStart: memberStart, valStart: valStart, valEnd: end}
		case "data_base64":
			return span, false, false
		case "specversion":
			v, ok := plainString(&sc)
			if !ok || sawSpec || string(v) != event.CloudEventsVersionV1 {
				return span, false, false
			}
			sawSpec = true
		case "datacontenttype":
			v, ok := plainString(&sc)
			if !ok || sawCT || !sdkIsJSON(sdkDataMediaType(string(v))) {
				return span, false, false
			}
			sawCT = true
		default:
			if !sc.skip() {
				return span, false, false
			}
		}
		switch sc.peek() {
		case ',':
			if isData {
				// Cut through the comma and the whitespace after it.
				sc.pos++
				sc.ws()
				span.cutEnd = sc.pos
				more = true
				continue
			}
			lastComma = sc.pos
			sc.pos++
		case '}':
			if isData {
				// The last member: cut the comma before it instead.
				span.cutEnd = span.valEnd
				if lastComma >= 0 {
					span.cutStart = lastComma
				}
			}
			sc.pos++
			more = false
		default:
			return span, false, false
		}
	}
	return span, decoded, sawData && sawSpec
}

// decodeFastAt is decodeFast on the envelope starting at data[pos]
// (after whitespace), without the check for trailing bytes: end is the
// index just past it. It is decodeFast(data[pos:end]) (the one-pass
// decoder never looks past the closing brace), but for ok also being
// false when the envelope has a number with an exponent (see
// skipDataObject).
func decodeFastAt(data []byte, pos int, out *wiredata.ActionData) (end int, ok bool) {
	d := onePassPool.Get().(*onePass)
	defer d.release()
	d.data, d.pos = data, pos
	var got wiredata.ActionData
	if !d.envelope(&got) || d.exponent {
		return 0, false
	}
	*out = got
	return d.pos, true
}

// plainString reads a string value without escapes and returns its
// bytes; ok is false for anything else.
func plainString(sc *onePass) ([]byte, bool) {
	if sc.peek() != '"' {
		return nil, false
	}
	start := sc.pos + 1
	end, escaped, ok := sc.scanString()
	if !ok || escaped {
		return nil, false
	}
	return sc.data[start:end], true
}

// skipDataObject returns the index just past the object starting at
// b[i] == '{', found by counting brackets outside strings, or -1. It does
// not validate: the envelope decoder checks the span as strict JSON
// afterwards, and a fast decode is only kept when it accepts. It declines
// (-1) numbers with an exponent and nesting deeper than maxDepth (see the
// top of this file).
func skipDataObject(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		c := b[i]
		if !dataSpecial[c] {
			continue
		}
		switch c {
		case '"':
			j := skipStringFast(b, i+1)
			if j < 0 {
				return -1
			}
			i = j - 1
		case '{', '[':
			depth++
			if depth > maxDepth {
				return -1
			}
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		case 'E':
			return -1 // an exponent (outside strings, only numbers have E)
		case 'e':
			if '0' <= b[i-1] && b[i-1] <= '9' {
				return -1 // an exponent (not the e of true or false)
			}
		}
	}
	return -1
}

// dataSpecial marks the bytes skipDataObject acts on outside strings.
var dataSpecial = [256]bool{'"': true, '{': true, '[': true, '}': true, ']': true, 'E': true, 'e': true}

// skipStringFast returns the index just past the closing quote of the
// string whose content starts at b[i], or -1. An escape is skipped as a
// backslash and the byte after it, so \" and \\ are handled; nothing else
// is checked.
func skipStringFast(b []byte, i int) int {
	for {
		// Eight bytes at a time, then byte by byte, up to a quote or a
		// backslash.
		for i+8 <= len(b) && !hasQuoteOrBackslash(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && b[i] != '"' && b[i] != '\\' {
			i++
		}
		if i >= len(b) {
			return -1
		}
		if b[i] == '"' {
			return i + 1
		}
		i += 2 // the backslash and the byte it escapes
	}
}

// hasQuoteOrBackslash reports whether one of the eight bytes of w is '"'
// or '\\' (the exact "has a byte equal to c" bit trick, as in
// hasSpecialByte).
func hasQuoteOrBackslash(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := w ^ ('"' * ones)
	backslash := w ^ ('\\' * ones)
	return ((quote-ones)&^quote|(backslash-ones)&^backslash)&highs != 0
}

// sdkDataMediaType is sdk-go v2.16.2's EventContextV1.GetDataMediaType of
// a datacontenttype: the text before the first ';', trimmed.
func sdkDataMediaType(dct string) string {
	i := strings.IndexRune(dct, ';')
	if i == -1 {
		return dct
	}
	return strings.TrimSpace(dct[0:i])
}

// sdkIsJSON is sdk-go v2.16.2's isJSON (event/content_type.go): the media
// types whose data sdk-go keeps as raw JSON bytes. Any other (even
// application/vnd.x+json or a differently cased one) makes sdk-go decode
// data as a JSON string. TestSDKIsJSON checks it against sdk-go itself.
func sdkIsJSON(mt string) bool {
	switch mt {
	case event.ApplicationJSON, event.TextJSON, event.ApplicationCloudEventsJSON, event.ApplicationCloudEventsBatchJSON, "":
		return true
	}
	return false
}

// strippedPool holds the buffers the body without data is built in.
var strippedPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// maxPooledStripped: larger buffers are left to the garbage collector.
const maxPooledStripped = 64 << 10

// unmarshalStripped has sdk-go unmarshal body without the data member and
// sets DataEncoded to the data value's bytes. The body is not modified;
// the copy without data is a pooled buffer, which the event does not
// reference afterwards (sdk-go copies every string it reads and
// materializes every value; TestStructuredFastPathBufferReuse).
//
// DataEncoded is a sub-slice of body, where sdk-go's is a copy: callers
// only read it, and binary mode has always set it to the body itself.
func unmarshalStripped(ev *event.Event, body []byte, span structuredSpan) error {
	p := strippedPool.Get().(*[]byte)
	buf := append((*p)[:0], body[:span.cutStart]...)
	buf = append(buf, body[span.cutEnd:]...)
	err := ev.UnmarshalJSON(buf)
	if cap(buf) <= maxPooledStripped {
		*p = buf[:0]
		strippedPool.Put(p)
	}
	if err != nil {
		return err
	}
	ev.DataEncoded = body[span.valStart:span.valEnd:span.valEnd]
	ev.DataBase64 = false
	return nil
}
