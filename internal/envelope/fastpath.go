package envelope

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	jsoniter "github.com/json-iterator/go"
)

// The generic JSON Schema validator (decode into map[string]any, walk the
// compiled schema) was 40 % of a message's CPU in the benchmark profile
// (docs/performance.md). fastValid is a hand-written streaming check of
// the same rules as testdata/schemas/action-envelope.v1.json. It is only
// trusted when it accepts: anything it rejects goes through the generic
// validator, which also words the error. TestFastPathAgreesWithSchema and
// FuzzEnvelopeData prove "fast accepts ⇒ schema accepts" on a corpus and
// under fuzzing, and that valid envelopes take the fast path.
//
// Keep it in step with the schema file: a schema change without a
// matching change here makes the agreement test fail.

// caseSensitive decodes the envelope with exact key matching, as JSON
// Schema matches property names (encoding/json would let "RULE" fill
// rule). Both paths decode with it.
var caseSensitive = jsoniter.Config{CaseSensitive: true}.Froze()

const handlerMaxLen = 256

// fastValid reports whether data certainly satisfies the envelope schema.
func fastValid(data []byte) bool {
	// Strict JSON first (UTF-8, syntax, depth): jsoniter's Skip is lenient.
	if !json.Valid(data) {
		return false
	}
	it := caseSensitive.BorrowIterator(data)
	defer caseSensitive.ReturnIterator(it)
	if it.WhatIsNext() != jsoniter.ObjectValue {
		return false
	}
	var rule, context, event bool
	ok := it.ReadObjectCB(func(it *jsoniter.Iterator, key string) bool {
		switch key {
		case "rule":
			rule = true
			return checkRule(it)
		case "plugin":
			return nullOr(it, jsoniter.ObjectValue, func() bool { return checkObject(it, pluginFields) })
		case "context":
			context = true
			return checkContext(it)
		case "external_identifier":
			return stringOrNull(it)
		case "event":
			event = true
			return checkEventData(it)
		}
		it.Skip()
		return it.Error == nil
	})
	return ok && it.Error == nil && rule && context && event
}

type check func(*jsoniter.Iterator) bool

// checkObject walks an object: keys fields knows by their check (a
// switch, so nothing is allocated per message), the rest skipped; every
// name in required must be present.
func checkObject(it *jsoniter.Iterator, fields func(key string) check, required ...string) bool {
	if it.WhatIsNext() != jsoniter.ObjectValue {
		return false
	}
	seen := 0
	ok := it.ReadObjectCB(func(it *jsoniter.Iterator, key string) bool {
		if c := fields(key); c != nil {
			for _, r := range required {
				if r == key {
					seen++ // a duplicate key counts twice: the fallback decides then
				}
			}
			return c(it)
		}
		it.Skip()
		return it.Error == nil
	})
	return ok && it.Error == nil && seen >= len(required)
}

func nullOr(it *jsoniter.Iterator, want jsoniter.ValueType, then func() bool) bool {
	switch it.WhatIsNext() {
	case jsoniter.NilValue:
		return it.ReadNil()
	case want:
		return then()
	}
	return false
}

func isString(it *jsoniter.Iterator) bool {
	if it.WhatIsNext() != jsoniter.StringValue {
		return false
	}
	it.Skip()
	return it.Error == nil
}

func stringOrNull(it *jsoniter.Iterator) bool {
	return nullOr(it, jsoniter.StringValue, func() bool { it.Skip(); return it.Error == nil })
}

func objectOrNull(it *jsoniter.Iterator) bool {
	return nullOr(it, jsoniter.ObjectValue, func() bool { it.Skip(); return it.Error == nil })
}

// stringMapOrNull: null, or an object whose every value is a string.
func stringMapOrNull(it *jsoniter.Iterator) bool {
	return nullOr(it, jsoniter.ObjectValue, func() bool {
		return it.ReadObjectCB(func(it *jsoniter.Iterator, _ string) bool { return isString(it) }) && it.Error == nil
	})
}

func stringListOrNull(it *jsoniter.Iterator) bool {
	return nullOr(it, jsoniter.ArrayValue, func() bool {
		return it.ReadArrayCB(func(it *jsoniter.Iterator) bool { return isString(it) }) && it.Error == nil
	})
}

// integerOrNull accepts plain integer literals only; 1.0 or 1e2 (also
// integers to JSON Schema) are left to the generic validator.
func integerOrNull(it *jsoniter.Iterator) bool {
	return nullOr(it, jsoniter.NumberValue, func() bool {
		raw := it.SkipAndReturnBytes()
		if it.Error != nil || len(raw) == 0 {
			return false
		}
		if raw[0] == '-' {
			raw = raw[1:]
		}
		for _, c := range raw {
			if c < '0' || c > '9' {
				return false
			}
		}
		return len(raw) > 0
	})
}

// handler: a string of 1..256 code points. Escaped strings are left to
// the generic validator (the decoders may count escapes differently).
func checkHandler(it *jsoniter.Iterator) bool {
	if it.WhatIsNext() != jsoniter.StringValue {
		return false
	}
	raw := it.SkipAndReturnBytes()
	if it.Error != nil || len(raw) < 2 || bytes.IndexByte(raw, '\\') >= 0 {
		return false
	}
	n := utf8.RuneCount(raw[1 : len(raw)-1])
	return n >= 1 && n <= handlerMaxLen
}

func pluginFields(key string) check {
	switch key {
	case "id", "slug":
		return stringOrNull
	}
	return nil
}

func handlerConfig(it *jsoniter.Iterator) bool {
	switch it.WhatIsNext() {
	case jsoniter.ObjectValue, jsoniter.ArrayValue, jsoniter.StringValue, jsoniter.NilValue:
		it.Skip()
		return it.Error == nil
	}
	return false
}

func ruleFields(key string) check {
	switch key {
	case "id":
		return stringOrNull
	case "handler":
		return checkHandler
	case "handler_config":
		return handlerConfig
	case "ordinal":
		return integerOrNull
	}
	return nil
}

func checkRule(it *jsoniter.Iterator) bool { return checkObject(it, ruleFields, "handler") }

func contextFields(key string) check {
	switch key {
	case "project_id", "project_slug", "org_slug":
		return isString
	case "team_slug", "environment", "actor_user_id":
		return stringOrNull
	case "assignment_options", "environment_config", "identity":
		return objectOrNull
	case "project_links":
		return stringMapOrNull
	case "project_type_slugs":
		return stringListOrNull
	}
	return nil
}

func checkContext(it *jsoniter.Iterator) bool {
	return checkObject(it, contextFields, "project_id", "project_slug", "org_slug")
}

func metadataFields(key string) check {
	switch key {
	case "webhook_id":
		return stringOrNull
	case "headers":
		return stringMapOrNull
	}
	return nil
}

func metadata(it *jsoniter.Iterator) bool {
	return nullOr(it, jsoniter.ObjectValue, func() bool { return checkObject(it, metadataFields) })
}

func eventFields(key string) check {
	switch key {
	case "type", "third_party_service", "attributed_to":
		return stringOrNull
	case "metadata":
		return metadata
	case "payload":
		return objectOrNull
	}
	return nil
}

func checkEventData(it *jsoniter.Iterator) bool { return checkObject(it, eventFields) }
