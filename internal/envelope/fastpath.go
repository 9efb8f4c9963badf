package envelope

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// The fast path. Validating and decoding the envelope generically
// (encoding/json.Valid, then a jsoniter walk of the schema rules, then a
// jsoniter reflection decode) was three passes over the data and 44 % of
// a message's CPU in the benchmark (docs/performance.md). decodeFast does
// it in one hand-written pass: it checks the bytes are strict RFC 8259
// JSON (what encoding/json.Valid accepts), checks the rules of
// testdata/schemas/action-envelope.v1.json, and builds the
// wiredata.ActionData that referenceDecode would build, field for field.
//
// It is only trusted when it accepts. ok == false means "not sure": the
// caller runs the generic path (validateSchema, then referenceDecode),
// which also words the error. So every input on which the reference
// decoders (jsoniter for the envelope, encoding/json inside
// PluginContext's own decoder) and a plain reading of the JSON could
// disagree is declined rather than guessed at:
//
//   - invalid UTF-8 and lone UTF-16 surrogate escapes anywhere: jsoniter
//     keeps bad bytes and writes lone surrogates its own way, encoding/json
//     (the schema validator, PluginContext) turns both into U+FFFD;
//   - a member name written with escapes in a typed object (root, rule,
//     plugin, context, event, metadata): jsoniter matches struct fields
//     by a hash of the unescaped name, encoding/json by the name;
//   - an unknown member name of a jsoniter-decoded typed object whose
//     jsoniter field hash equals a known name's: jsoniter would decode it
//     as that field (it compares hashes only, never the name);
//   - a known member name repeated: decoders differ on duplicates (last
//     wins, or maps merged), and the schema sees only the last;
//   - context.identity other than null: its model has its own rules;
//   - a handler with escapes (the decoders may count code points
//     differently) and an ordinal that is not a plain integer literal of
//     at most 18 digits (1.0 and 1e2 are integers to JSON Schema but not
//     to jsoniter; longer literals may overflow int);
//   - a number out of float64 range anywhere, even in a value jsoniter
//     only skips (the reference decode fails on it; see inFloatRange);
//   - nesting deeper than maxDepth.
//
// TestFastPathAgreesWithSchema, TestFastDecodeEqualsReference and
// FuzzEnvelopeData prove on a corpus and under fuzzing that whatever
// decodeFast accepts, encoding/json.Valid and the schema accept and
// referenceDecode decodes to a reflect.DeepEqual value; and that valid
// envelopes take the fast path. Keep it in step with the schema file and
// the wire types: a change without a matching change here makes those
// tests (and TestFastFieldsMatchWireTypes) fail.

const (
	handlerMaxLen = 256
	// maxDepth bounds nesting (encoding/json allows 10000); deeper
	// documents go to the generic path. It also bounds the recursion.
	maxDepth = 1000
	// ordinalMaxDigits: an integer literal of at most 18 digits fits int
	// (64-bit) without an overflow check; longer ones are declined.
	ordinalMaxDigits = 18
)

// decodeFast validates and decodes data in one pass; ok is false when
// the generic path must decide (see above).
func decodeFast(data []byte) (out wiredata.ActionData, ok bool) {
	d := onePassPool.Get().(*onePass)
	defer d.release()
	d.data = data
	if !d.envelope(&out) {
		return wiredata.ActionData{}, false
	}
	d.ws()
	if d.pos != len(d.data) {
		return wiredata.ActionData{}, false // trailing bytes
	}
	return out, true
}

// onePass is the state of one decodeFast call.
type onePass struct {
	data  []byte
	pos   int
	depth int
	// Stacks of the members (elements) of the objects (arrays) being
	// built, so each map and slice is made once, at its final size.
	// Pooled: they are scratch space only.
	members       []member
	items         []any
	stringMembers []stringMember
	strings       []string
	// exponent: a number with an exponent was read (decodeFastAt
	// declines it, see structured.go).
	exponent bool
}

var onePassPool = sync.Pool{New: func() any { return &onePass{} }}

// maxPooledStack: stacks grown larger by an odd document are dropped
// rather than kept in the pool.
const maxPooledStack = 256

func (d *onePass) release() {
	// Drop the references to the decoded values (a declined document
	// leaves entries on its stacks).
	clear(d.members[:cap(d.members)])
	clear(d.items[:cap(d.items)])
	clear(d.stringMembers[:cap(d.stringMembers)])
	clear(d.strings[:cap(d.strings)])
	if max(cap(d.members), cap(d.items), cap(d.stringMembers), cap(d.strings)) > maxPooledStack {
		return
	}
	*d = onePass{members: d.members[:0], items: d.items[:0], stringMembers: d.stringMembers[:0], strings: d.strings[:0]}
	onePassPool.Put(d)
}

type member struct {
	key string
	val any
}

type stringMember struct{ key, val string }

// typedFields are the member names of an object decoded into a Go
// struct, in the order of the field constants below.
type typedFields struct {
	names []string
	// hashes are jsoniter's field hashes of names; nil for the context,
	// which PluginContext decodes by exact name (encoding/json).
	hashes []int64
}

func newTypedFields(byJsoniter bool, names ...string) *typedFields {
	f := &typedFields{names: names}
	if byJsoniter {
		for _, n := range names {
			f.hashes = append(f.hashes, jsoniterFieldHash([]byte(n)))
		}
	}
	return f
}

// jsoniterFieldHash is the hash jsoniter (v1.1.12, case-sensitive
// config, iter_object.go readFieldHash/calcHash) matches struct fields
// by, for a name without escapes.
func jsoniterFieldHash(name []byte) int64 {
	h := int64(0x811c9dc5)
	for _, b := range name {
		h ^= int64(b)
		h *= 0x1000193
	}
	return h
}

// The typed objects, their member names as in the wire types' json tags
// (TestFastFieldsMatchWireTypes), and the index of each name.
var (
	envelopeFields = newTypedFields(true, "rule", "plugin", "context", "external_identifier", "event")
	ruleFields     = newTypedFields(true, "id", "handler", "handler_config", "ordinal")
	pluginFields   = newTypedFields(true, "id", "slug")
	contextFields  = newTypedFields(false, "project_id", "project_slug", "org_slug", "team_slug", "environment",
		"assignment_options", "project_links", "project_type_slugs", "environment_config", "actor_user_id", "identity")
	eventFields    = newTypedFields(true, "type", "third_party_service", "attributed_to", "metadata", "payload")
	metadataFields = newTypedFields(true, "webhook_id", "headers")
)

const (
	fRule = iota
	fPlugin
	fContext
	fExternalIdentifier
	fEvent
)

const (
	fRuleID = iota
	fRuleHandler
	fRuleHandlerConfig
	fRuleOrdinal
)

const (
	fPluginID = iota
	fPluginSlug
)

const (
	fProjectID = iota
	fProjectSlug
	fOrgSlug
	fTeamSlug
	fEnvironment
	fAssignmentOptions
	fProjectLinks
	fProjectTypeSlugs
	fEnvironmentConfig
	fActorUserID
	fIdentity
)

const (
	fEventType = iota
	fThirdPartyService
	fAttributedTo
	fMetadata
	fPayload
)

const (
	fWebhookID = iota
	fHeaders
)

// typedObject walks a typed object: each known member name (fields) goes
// to value with its index, which must read the value; unknown names are
// skipped. It returns the names seen. (value does not escape, so the
// callers' closures stay on the stack.)
func (d *onePass) typedObject(fields *typedFields, value func(i int) bool) (fieldSet, bool) {
	var seen fieldSet
	more, ok := d.openObject()
	for ok && more {
		var i int
		if i, ok = d.field(fields, &seen); !ok {
			break
		}
		if i < 0 {
			ok = d.skip()
		} else {
			ok = value(i)
		}
		if ok {
			more, ok = d.nextMember()
		}
	}
	return seen, ok
}

// fieldSet records which known names of a typed object were seen.
type fieldSet uint16

func (s fieldSet) has(i int) bool { return s&(1<<i) != 0 }

// ---- typed objects ----

func (d *onePass) envelope(out *wiredata.ActionData) bool {
	seen, ok := d.typedObject(envelopeFields, func(i int) (ok bool) {
		switch i {
		case fRule:
			ok = d.rule(&out.Rule)
		case fPlugin:
			ok = d.plugin(&out.Plugin)
		case fContext:
			ok = d.context(&out.Context)
		case fExternalIdentifier:
			ok = d.stringOrNull(&out.ExternalIdentifier)
		case fEvent:
			ok = d.event(&out.Event)
		}
		return ok
	})
	if !ok {
		return false
	}
	return seen.has(fRule) && seen.has(fContext) && seen.has(fEvent)
}

func (d *onePass) rule(r *wire.Rule) bool {
	seen, ok := d.typedObject(ruleFields, func(i int) (ok bool) {
		switch i {
		case fRuleID:
			ok = d.stringOrNull(&r.ID)
		case fRuleHandler:
			ok = d.handler(&r.Handler)
		case fRuleHandlerConfig:
			ok = d.handlerConfig(&r.HandlerConfig)
		case fRuleOrdinal:
			ok = d.ordinal(&r.Ordinal)
		}
		return ok
	})
	if !ok {
		return false
	}
	return seen.has(fRuleHandler)
}

// handler: a string of 1..handlerMaxLen code points, without escapes.
func (d *onePass) handler(dst *string) bool {
	if d.peek() != '"' {
		return false
	}
	start := d.pos + 1
	end, escaped, ok := d.scanString()
	if !ok || escaped {
		return false
	}
	raw := d.data[start:end]
	// scanString checked the UTF-8, so code points are the bytes that
	// do not continue a sequence.
	n := 0
	for _, c := range raw {
		if c&0xC0 != 0x80 {
			n++
		}
	}
	if n < 1 || n > handlerMaxLen {
		return false
	}
	*dst = string(raw)
	return true
}

// handlerConfig: an object, array or string kept as its exact bytes (a
// copy, as jsoniter's json.RawMessage decode makes), or null (nil).
func (d *onePass) handlerConfig(dst *json.RawMessage) bool {
	switch d.peek() {
	case 'n':
		return d.literal("null")
	case '{', '[', '"':
		start := d.pos
		if !d.skip() {
			return false
		}
		*dst = bytes.Clone(d.data[start:d.pos])
		return true
	}
	return false
}

// ordinal: null (0) or a plain integer literal of at most
// ordinalMaxDigits digits.
func (d *onePass) ordinal(dst *int) bool {
	if d.peek() == 'n' {
		return d.literal("null")
	}
	lit, integer, ok := d.number()
	if !ok || !integer {
		return false
	}
	digits := lit
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) > ordinalMaxDigits {
		return false
	}
	v := 0
	for _, c := range digits {
		v = v*10 + int(c-'0')
	}
	if lit[0] == '-' {
		v = -v
	}
	*dst = v
	return true
}

func (d *onePass) plugin(dst **wire.PluginRef) bool {
	if d.peek() == 'n' {
		return d.literal("null")
	}
	p := &wire.PluginRef{}
	_, ok := d.typedObject(pluginFields, func(i int) (ok bool) {
		switch i {
		case fPluginID:
			ok = d.stringOrNull(&p.ID)
		case fPluginSlug:
			ok = d.stringOrNull(&p.Slug)
		}
		return ok
	})
	if !ok {
		return false
	}
	*dst = p
	return true
}

// context builds what PluginContext's own decoder builds: absent or null
// containers read as empty ones, absent or null optional strings as nil.
func (d *onePass) context(c *plugins.PluginContext) bool {
	seen, ok := d.typedObject(contextFields, func(i int) (ok bool) {
		switch i {
		case fProjectID:
			c.ProjectID, ok = d.str()
		case fProjectSlug:
			c.ProjectSlug, ok = d.str()
		case fOrgSlug:
			c.OrgSlug, ok = d.str()
		case fTeamSlug:
			ok = d.optionalString(&c.TeamSlug)
		case fEnvironment:
			ok = d.optionalString(&c.Environment)
		case fActorUserID:
			ok = d.optionalString(&c.ActorUserID)
		case fAssignmentOptions:
			ok = d.objectOrNull(&c.AssignmentOptions)
		case fEnvironmentConfig:
			ok = d.objectOrNull(&c.EnvironmentConfig)
		case fProjectLinks:
			ok = d.stringMapOrNull(&c.ProjectLinks)
		case fProjectTypeSlugs:
			ok = d.stringListOrNull(&c.ProjectTypeSlugs)
		case fIdentity:
			// Credentials are decoded by their model's own rules: left to
			// the reference decoder.
			ok = d.peek() == 'n' && d.literal("null")
		}
		return ok
	})
	if !ok {
		return false
	}
	if !seen.has(fProjectID) || !seen.has(fProjectSlug) || !seen.has(fOrgSlug) {
		return false
	}
	if c.AssignmentOptions == nil {
		c.AssignmentOptions = map[string]any{}
	}
	if c.ProjectLinks == nil {
		c.ProjectLinks = map[string]string{}
	}
	if c.ProjectTypeSlugs == nil {
		c.ProjectTypeSlugs = []string{}
	}
	if c.EnvironmentConfig == nil {
		c.EnvironmentConfig = map[string]any{}
	}
	return true
}

// event builds what jsoniter builds: absent or null maps stay nil.
func (d *onePass) event(e *plugins.Event) bool {
	_, ok := d.typedObject(eventFields, func(i int) (ok bool) {
		switch i {
		case fEventType:
			ok = d.stringOrNull(&e.Type)
		case fThirdPartyService:
			ok = d.stringOrNull(&e.ThirdPartyService)
		case fAttributedTo:
			ok = d.stringOrNull(&e.AttributedTo)
		case fMetadata:
			ok = d.metadata(&e.Metadata)
		case fPayload:
			ok = d.objectOrNull(&e.Payload)
		}
		return ok
	})
	if !ok {
		return false
	}
	return true
}

func (d *onePass) metadata(m *plugins.EventMetadata) bool {
	if d.peek() == 'n' {
		return d.literal("null")
	}
	_, ok := d.typedObject(metadataFields, func(i int) (ok bool) {
		switch i {
		case fWebhookID:
			ok = d.stringOrNull(&m.WebhookID)
		case fHeaders:
			ok = d.stringMapOrNull(&m.Headers)
		}
		return ok
	})
	if !ok {
		return false
	}
	return true
}

// field reads a member name of a typed object and its colon, and returns
// the index of the known name, or -1 for an unknown one (the caller skips
// its value). Escaped names, repeated known names and unknown names
// jsoniter would take for a known one are declined.
func (d *onePass) field(f *typedFields, seen *fieldSet) (int, bool) {
	name, escaped, ok := d.key()
	if !ok || escaped {
		return 0, false
	}
	for i, known := range f.names {
		if string(name) == known {
			if seen.has(i) {
				return 0, false
			}
			*seen |= 1 << i
			return i, true
		}
	}
	if f.hashes != nil {
		h := jsoniterFieldHash(name)
		for _, known := range f.hashes {
			if h == known {
				return 0, false
			}
		}
	}
	return -1, true
}

// ---- typed values ----

// stringOrNull: a string, or null (leaves dst "", as jsoniter does).
func (d *onePass) stringOrNull(dst *string) bool {
	if d.peek() == 'n' {
		return d.literal("null")
	}
	s, ok := d.str()
	*dst = s
	return ok
}

// optionalString: a string, or null (nil).
func (d *onePass) optionalString(dst **string) bool {
	if d.peek() == 'n' {
		return d.literal("null")
	}
	s, ok := d.str()
	*dst = &s
	return ok
}

// objectOrNull: an object as a generic map, or null (leaves dst nil).
func (d *onePass) objectOrNull(dst *map[string]any) bool {
	if d.peek() == 'n' {
		return d.literal("null")
	}
	m, ok := d.object()
	*dst = m
	return ok
}

// stringMapOrNull: an object whose every value is a string, or null
// (leaves dst nil). A repeated name: the last value wins, as in both
// reference decoders.
func (d *onePass) stringMapOrNull(dst *map[string]string) bool {
	if d.peek() == 'n' {
		return d.literal("null")
	}
	more, ok := d.openObject()
	if !ok {
		return false
	}
	base := len(d.stringMembers)
	for more {
		k, ok := d.keyString()
		if !ok {
			return false
		}
		v, ok := d.str()
		if !ok {
			return false
		}
		d.stringMembers = append(d.stringMembers, stringMember{k, v})
		if more, ok = d.nextMember(); !ok {
			return false
		}
	}
	m := make(map[string]string, len(d.stringMembers)-base)
	for _, kv := range d.stringMembers[base:] {
		m[kv.key] = kv.val
	}
	d.stringMembers = d.stringMembers[:base]
	*dst = m
	return true
}

// stringListOrNull: an array of strings, or null (leaves dst nil).
func (d *onePass) stringListOrNull(dst *[]string) bool {
	switch d.peek() {
	case 'n':
		return d.literal("null")
	case '[':
	default:
		return false
	}
	more, ok := d.openArray()
	if !ok {
		return false
	}
	base := len(d.strings)
	for more {
		s, ok := d.str()
		if !ok {
			return false
		}
		d.strings = append(d.strings, s)
		if more, ok = d.nextItem(); !ok {
			return false
		}
	}
	*dst = append(make([]string, 0, len(d.strings)-base), d.strings[base:]...)
	d.strings = d.strings[:base]
	return true
}

// ---- generic values, as jsoniter (no UseNumber) and encoding/json
// decode into any: map[string]any, []any (never nil), float64, string,
// bool, nil ----

func (d *onePass) value() (any, bool) {
	switch d.peek() {
	case '{':
		m, ok := d.object()
		return m, ok
	case '[':
		a, ok := d.array()
		return a, ok
	case '"':
		s, ok := d.str()
		return s, ok
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	case 'n':
		return nil, d.literal("null")
	}
	lit, _, ok := d.number()
	if !ok {
		return nil, false
	}
	f, ok := parseFloat(lit)
	return f, ok
}

// object builds a generic object; a repeated name: the last value wins,
// as in both reference decoders.
func (d *onePass) object() (map[string]any, bool) {
	more, ok := d.openObject()
	if !ok {
		return nil, false
	}
	base := len(d.members)
	for more {
		k, ok := d.keyString()
		if !ok {
			return nil, false
		}
		v, ok := d.value()
		if !ok {
			return nil, false
		}
		d.members = append(d.members, member{k, v})
		if more, ok = d.nextMember(); !ok {
			return nil, false
		}
	}
	m := make(map[string]any, len(d.members)-base)
	for _, kv := range d.members[base:] {
		m[kv.key] = kv.val
	}
	d.members = d.members[:base]
	return m, true
}

func (d *onePass) array() ([]any, bool) {
	more, ok := d.openArray()
	if !ok {
		return nil, false
	}
	base := len(d.items)
	for more {
		v, ok := d.value()
		if !ok {
			return nil, false
		}
		d.items = append(d.items, v)
		if more, ok = d.nextItem(); !ok {
			return nil, false
		}
	}
	a := append(make([]any, 0, len(d.items)-base), d.items[base:]...)
	d.items = d.items[:base]
	return a, true
}

// pow10 are the powers of ten a float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseFloat converts a JSON number literal to the nearest float64, as
// strconv.ParseFloat does (and so jsoniter and encoding/json: jsoniter's
// own fast path is exact as well). Out of range: not ok (both reference
// decoders fail there).
func parseFloat(lit []byte) (float64, bool) {
	if f, ok := parseFloatExact(lit); ok {
		return f, true
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	return f, err == nil
}

// parseFloatExact handles literals of at most 15 digits and no exponent:
// the digits and the power of ten are exact float64s, so one division
// rounds correctly (Clinger's fast path).
func parseFloatExact(lit []byte) (float64, bool) {
	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	var mant uint64
	digits, frac, dot := 0, 0, false
	for _, c := range lit {
		switch {
		case c >= '0' && c <= '9':
			mant = mant*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		case c == '.':
			dot = true
		default:
			return 0, false // exponent
		}
	}
	if digits > 15 {
		return 0, false
	}
	f := float64(mant) / pow10[frac]
	if neg {
		f = -f
	}
	return f, true
}

// ---- scanning ----

func (d *onePass) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\r', '\n':
			d.pos++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte (0 at the end).
func (d *onePass) peek() byte {
	if d.pos < len(d.data) && d.data[d.pos] > ' ' {
		return d.data[d.pos] // compact JSON: no whitespace to skip
	}
	d.ws()
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *onePass) literal(lit string) bool {
	if len(d.data)-d.pos >= len(lit) && string(d.data[d.pos:d.pos+len(lit)]) == lit {
		d.pos += len(lit)
		return true
	}
	return false
}

func (d *onePass) enter() bool {
	d.depth++
	return d.depth <= maxDepth
}

// openObject consumes '{'; more reports whether a member follows.
func (d *onePass) openObject() (more, ok bool) {
	if d.peek() != '{' {
		return false, false
	}
	d.pos++
	if !d.enter() {
		return false, false
	}
	if d.peek() == '}' {
		d.pos++
		d.depth--
		return false, true
	}
	return true, true
}

// nextMember consumes the ',' or '}' after a member's value.
func (d *onePass) nextMember() (more, ok bool) {
	switch d.peek() {
	case ',':
		d.pos++
		return true, true
	case '}':
		d.pos++
		d.depth--
		return false, true
	}
	return false, false
}

// openArray consumes '['; more reports whether an element follows.
func (d *onePass) openArray() (more, ok bool) {
	if d.peek() != '[' {
		return false, false
	}
	d.pos++
	if !d.enter() {
		return false, false
	}
	if d.peek() == ']' {
		d.pos++
		d.depth--
		return false, true
	}
	return true, true
}

// nextItem consumes the ',' or ']' after an element.
func (d *onePass) nextItem() (more, ok bool) {
	switch d.peek() {
	case ',':
		d.pos++
		return true, true
	case ']':
		d.pos++
		d.depth--
		return false, true
	}
	return false, false
}

// key reads a member name and its colon: the bytes between the quotes
// (escapes not decoded) and whether it has escapes.
func (d *onePass) key() (name []byte, escaped, ok bool) {
	if d.peek() != '"' {
		return nil, false, false
	}
	start := d.pos + 1
	end, escaped, ok := d.scanString()
	if !ok || d.peek() != ':' {
		return nil, false, false
	}
	d.pos++
	return d.data[start:end], escaped, true
}

// keyString reads a member name of a map and its colon, decoded.
func (d *onePass) keyString() (string, bool) {
	name, escaped, ok := d.key()
	if !ok {
		return "", false
	}
	if escaped {
		return unescape(name), true
	}
	return string(name), true
}

// str reads a string value, decoded: one allocation.
func (d *onePass) str() (string, bool) {
	if d.peek() != '"' {
		return "", false
	}
	start := d.pos + 1
	end, escaped, ok := d.scanString()
	if !ok {
		return "", false
	}
	if escaped {
		return unescape(d.data[start:end]), true
	}
	return string(d.data[start:end]), true
}

// skip checks one value without building it.
func (d *onePass) skip() bool {
	switch d.peek() {
	case '{':
		more, ok := d.openObject()
		for ok && more {
			if _, _, ok = d.key(); ok && d.skip() {
				more, ok = d.nextMember()
			} else {
				ok = false
			}
		}
		return ok
	case '[':
		more, ok := d.openArray()
		for ok && more {
			if ok = d.skip(); ok {
				more, ok = d.nextItem()
			}
		}
		return ok
	case '"':
		_, _, ok := d.scanString()
		return ok
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	lit, _, ok := d.number()
	return ok && inFloatRange(lit)
}

// inFloatRange: jsoniter's Skip (of unknown members, of handler_config,
// of the context before PluginContext decodes it) parses every number
// with an exponent or a sign as a float64 and fails on one out of range,
// so such a number anywhere makes the reference decode fail. Without an
// exponent, 300 bytes cannot reach 1.8e308.
func inFloatRange(lit []byte) bool {
	if len(lit) <= 300 && bytes.IndexAny(lit, "eE") < 0 {
		return true
	}
	_, err := strconv.ParseFloat(string(lit), 64)
	return err == nil
}

// number reads a number literal by the RFC 8259 grammar; integer
// reports a literal with neither fraction nor exponent.
func (d *onePass) number() (lit []byte, integer, ok bool) {
	data, start := d.data, d.pos
	i := start
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return nil, false, false
	case data[i] == '0':
		i++
	case '1' <= data[i] && data[i] <= '9':
		i = digits(data, i+1)
	default:
		return nil, false, false
	}
	integer = true
	if i < len(data) && data[i] == '.' {
		integer = false
		j := digits(data, i+1)
		if j == i+1 {
			return nil, false, false
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		integer = false
		d.exponent = true
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := digits(data, i)
		if j == i {
			return nil, false, false
		}
		i = j
	}
	d.pos = i
	return data[start:i], integer, true
}

func digits(data []byte, i int) int {
	for i < len(data) && '0' <= data[i] && data[i] <= '9' {
		i++
	}
	return i
}

// plain marks the string bytes that need no attention: ASCII other than
// control characters, '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString checks the string starting at d.data[d.pos] == '"' and
// moves past it: end is the index of the closing quote, escaped whether
// it has escapes. Control characters are rejected (as JSON requires),
// invalid UTF-8 and lone surrogate escapes declined (see the top).
func (d *onePass) scanString() (end int, escaped, ok bool) {
	data := d.data
	i := d.pos + 1
	for {
		// Eight plain bytes at a time, then byte by byte up to the next
		// one needing attention.
		for i+8 <= len(data) && !hasSpecialByte(binary.LittleEndian.Uint64(data[i:])) {
			i += 8
		}
		for i < len(data) && plain[data[i]] {
			i++
		}
		if i >= len(data) {
			return 0, false, false
		}
		switch c := data[i]; {
		case c == '"':
			d.pos = i + 1
			return i, escaped, true
		case c == '\\':
			n := escapeLen(data[i:])
			if n == 0 {
				return 0, false, false
			}
			escaped = true
			i += n
		case c < 0x20:
			return 0, false, false
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				return 0, false, false
			}
			i += size
		}
	}
}

// hasSpecialByte reports whether one of the eight bytes of w is not
// plain: below 0x20, '"', '\\' or non-ASCII. Each test is the exact
// "has a byte less than n / equal to c" bit trick (nonzero iff some byte
// matches).
func hasSpecialByte(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := w ^ ('"' * ones)
	backslash := w ^ ('\\' * ones)
	return ((w-0x20*ones)&^w|(quote-ones)&^quote|(backslash-ones)&^backslash|w)&highs != 0
}

// escapeLen returns the length of the valid escape starting s (s[0] is
// '\\'), 0 for an invalid one. A \u escape of a UTF-16 surrogate counts
// only as the high half of an escaped pair: alone, decoders differ on
// it (jsoniter writes it as its own bytes, encoding/json as U+FFFD).
func escapeLen(s []byte) int {
	if len(s) < 2 {
		return 0
	}
	switch s[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		r, ok := hex4(s[2:])
		switch {
		case !ok:
			return 0
		case r < 0xD800 || r > 0xDFFF:
			return 6
		case r >= 0xDC00:
			return 0 // a low surrogate first
		}
		if len(s) < 12 || s[6] != '\\' || s[7] != 'u' {
			return 0
		}
		if r2, ok := hex4(s[8:]); !ok || r2 < 0xDC00 || r2 > 0xDFFF {
			return 0
		}
		return 12
	}
	return 0
}

func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unescape decodes the content of a string scanString accepted. The
// result is never longer than raw, so it is built in one allocation.
func unescape(raw []byte) string {
	var b strings.Builder
	b.Grow(len(raw))
	for {
		i := bytes.IndexByte(raw, '\\')
		if i < 0 {
			b.Write(raw)
			return b.String()
		}
		b.Write(raw[:i])
		raw = raw[i:]
		n := 2
		switch raw[1] {
		case 'u':
			r, _ := hex4(raw[2:])
			n = 6
			if utf16.IsSurrogate(r) {
				r2, _ := hex4(raw[8:])
				r, n = utf16.DecodeRune(r, r2), 12
			}
			b.WriteRune(r)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		default: // '"', '\\', '/'
			b.WriteByte(raw[1])
		}
		raw = raw[n:]
	}
}
