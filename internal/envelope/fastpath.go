package envelope

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	jsoniter "github.com/json-iterator/go"

	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
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

const (
	handlerMaxLen = 256
	// maxKnownFields is the most properties the schema names on one
	// object (context: 11).
	maxKnownFields = 11
)

// fastValid reports whether data certainly satisfies the envelope schema.
func fastValid(data []byte) bool {
	// Strict JSON first (UTF-8, syntax, depth): jsoniter's Skip is lenient.
	if !json.Valid(data) {
		return false
	}
	it := caseSensitive.BorrowIterator(data)
	defer caseSensitive.ReturnIterator(it)
	return checkObject(it, rootFields, "rule", "context", "event")
}

func rootFields(key string) check {
	switch key {
	case "rule":
		return checkRule
	case "plugin":
		return func(it *jsoniter.Iterator) bool {
			return nullOr(it, jsoniter.ObjectValue, func() bool { return checkObject(it, pluginFields) })
		}
	case "context":
		return checkContext
	case "external_identifier":
		return stringOrNull
	case "event":
		return checkEventData
	}
	return nil
}

type check func(*jsoniter.Iterator) bool

// checkObject walks an object: keys fields knows by their check (a
// switch, so nothing is allocated per message), the rest skipped; every
// name in required must be present.
func checkObject(it *jsoniter.Iterator, fields func(key string) check, required ...string) bool {
	if it.WhatIsNext() != jsoniter.ObjectValue {
		return false
	}
	var known [maxKnownFields]string
	n, seen := 0, 0
	ok := it.ReadObjectCB(func(it *jsoniter.Iterator, key string) bool {
		if c := fields(key); c != nil {
			// A repeated known key is left to the generic path: decoders
			// differ on duplicates (last wins, or maps merged).
			for _, k := range known[:n] {
				if k == key {
					return false
				}
			}
			if n == len(known) {
				return false
			}
			known[n] = key
			n++
			for _, r := range required {
				if r == key {
					seen++
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

// fastEnvelope is wire.ActionData with the context as plain typed fields,
// so a fast-path envelope skips PluginContext's generic decoder (7 µs of
// a message's budget). Only used after fastValid accepted the data;
// TestFastDecodeEqualsReference proves the result equal to
// referenceDecode's.
type fastEnvelope struct {
	Rule               wire.Rule       `json:"rule"`
	Plugin             *wire.PluginRef `json:"plugin"`
	Context            fastContext     `json:"context"`
	ExternalIdentifier string          `json:"external_identifier"`
	Event              plugins.Event   `json:"event"`
}

type fastContext struct {
	ProjectID         string            `json:"project_id"`
	ProjectSlug       string            `json:"project_slug"`
	OrgSlug           string            `json:"org_slug"`
	TeamSlug          *string           `json:"team_slug"`
	Environment       *string           `json:"environment"`
	AssignmentOptions map[string]any    `json:"assignment_options"`
	ProjectLinks      map[string]string `json:"project_links"`
	ProjectTypeSlugs  []string          `json:"project_type_slugs"`
	EnvironmentConfig map[string]any    `json:"environment_config"`
	ActorUserID       *string           `json:"actor_user_id"`
	Identity          json.RawMessage   `json:"identity"`
}

// fastDecode decodes fast-path-valid data; ok is false when the
// reference decoder must do it (identity credentials present: their
// model has its own rules).
func fastDecode(data []byte) (wire.ActionData, bool) {
	var f fastEnvelope
	if err := caseSensitive.Unmarshal(data, &f); err != nil {
		return wire.ActionData{}, false
	}
	if id := bytes.TrimSpace(f.Context.Identity); len(id) > 0 && !bytes.Equal(id, []byte("null")) {
		return wire.ActionData{}, false
	}
	c := f.Context
	// Absent or null containers read as empty, as PluginContext's decoder does.
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
	return wire.ActionData{
		Rule:   f.Rule,
		Plugin: f.Plugin,
		Context: plugins.PluginContext{
			ProjectID: c.ProjectID, ProjectSlug: c.ProjectSlug, OrgSlug: c.OrgSlug,
			TeamSlug: c.TeamSlug, Environment: c.Environment,
			AssignmentOptions: c.AssignmentOptions, ProjectLinks: c.ProjectLinks,
			ProjectTypeSlugs: c.ProjectTypeSlugs, EnvironmentConfig: c.EnvironmentConfig,
			ActorUserID: c.ActorUserID,
		},
		ExternalIdentifier: f.ExternalIdentifier,
		Event:              f.Event,
	}, true
}
