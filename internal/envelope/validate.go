package envelope

import (
	"bytes"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// decodeEnvelope decodes CloudEvent data into wiredata.ActionData by
// reading it token by token on a jsontext.Decoder, which rejects bad syntax,
// duplicate names and bad UTF-8; decodeData spells the envelope schema's
// rules (names match exactly, JSON types, "required", "not null", "values
// are strings"). The oracle tests check that whatever it accepts, the
// schema and a reference decoder accept. chain is data.chain's raw value
// (nil without one).
func decodeEnvelope(data []byte) (out wiredata.ActionData, chain jsontext.Value, err error) {
	r := newReader(data)
	defer readers.Put(r)
	d := &r.dec
	if chain, err = decodeData(d, &out); err == nil {
		if _, err = d.ReadToken(); err == io.EOF {
			return out, chain, nil
		} else if err == nil {
			err = errors.New("data after the JSON object")
		}
	}
	return wiredata.ActionData{}, nil, dataError(data, d, err)
}

// dataError words a failure of decodeData: where (the JSON pointer of the
// value read last, quoted: names are the sender's) and what.
func dataError(data []byte, d *jsontext.Decoder, err error) *Error {
	var syntax *jsontext.SyntacticError
	if len(bytes.TrimSpace(data)) == 0 {
		return invalid("data is empty")
	} else if errors.As(err, &syntax) {
		return invalid("data is not strict JSON: %v", err)
	}
	return invalid("data fails the envelope (%s) at %s: %v", wire.EnvelopeSchemaV1, strconv.Quote(truncate(string(d.StackPointer()), 128)), err)
}

const handlerMaxLen = 256 // code points, the schema's maxLength

// missing names the required members not present (false in has).
func missing(has map[string]bool) error {
	var names []string
	for name, ok := range has {
		if !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return fmt.Errorf("missing required %s", strings.Join(names, ", "))
}

var (
	errNotObject = errors.New("must be an object or null")
	errNotString = errors.New("must be a string")
)

// decodeData reads the envelope object at d (wire-contract §3 data) into
// out; chain is data.chain's value, copied, for internal/chain.
func decodeData(d *jsontext.Decoder, out *wiredata.ActionData) (chain jsontext.Value, err error) {
	var rule, handler, ctx, event bool
	r, e := &out.Rule, &out.Event
	_, err = object(d, func(name []byte) (err error) {
		switch string(name) {
		case "rule":
			rule, err = object(d, func(name []byte) (err error) {
				switch string(name) {
				case "id":
					r.ID, _, err = str(d)
				case "handler":
					r.Handler, handler, err = str(d)
				case "handler_config":
					r.HandlerConfig, err = d.ReadValue()
					r.HandlerConfig = bytes.Clone(r.HandlerConfig)
				case "ordinal":
					r.Ordinal, err = integer(d)
				default:
					err = d.SkipValue()
				}
				return err
			})
		case "plugin": // a local, so out stays on the stack
			var p *wire.PluginRef
			err = jsonv2.UnmarshalDecode(d, &p)
			out.Plugin = p
		case "context":
			ctx, err = decodeContext(d, &out.Context)
		case "external_identifier":
			out.ExternalIdentifier, _, err = str(d)
		case "event":
			event, err = object(d, func(name []byte) (err error) {
				switch string(name) {
				case "type":
					e.Type, _, err = str(d)
				case "third_party_service":
					e.ThirdPartyService, _, err = str(d)
				case "attributed_to":
					e.AttributedTo, _, err = str(d)
				case "metadata":
					_, err = object(d, func(name []byte) (err error) {
						switch string(name) {
						case "webhook_id":
							e.Metadata.WebhookID, _, err = str(d)
						case "headers":
							e.Metadata.Headers, err = strMap(d)
						default:
							err = d.SkipValue()
						}
						return err
					})
				case "payload":
					e.Payload, err = anyMap(d)
				default:
					err = d.SkipValue()
				}
				return err
			})
		case "chain":
			chain, err = d.ReadValue()
			chain = bytes.Clone(chain)
		default:
			err = d.SkipValue()
		}
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case !rule || !handler || !ctx || !event:
		// Without rule only rule is named, not its handler too.
		return nil, missing(map[string]bool{"rule": rule, "rule.handler": handler || !rule, "context": ctx, "event": event})
	case utf8.RuneCountInString(r.Handler) < 1 || utf8.RuneCountInString(r.Handler) > handlerMaxLen:
		return nil, errors.New("rule.handler must have 1 to 256 characters")
	}
	if k := jsontext.Value(r.HandlerConfig).Kind(); k == '0' || k == 't' || k == 'f' {
		return nil, errors.New("rule.handler_config must be an object, array, string or null")
	}
	return chain, nil
}

// decodeContext reads context into what PluginContext's own decoder builds
// (its defaults included; the oracle test compares them).
func decodeContext(d *jsontext.Decoder, c *plugins.PluginContext) (bool, error) {
	var id, slug, org, ok bool
	c.ProjectTypeSlugs = []string{} // model defaults: empty, not nil
	obj, err := object(d, func(name []byte) (err error) {
		switch string(name) {
		case "project_id":
			c.ProjectID, id, err = str(d)
		case "project_slug":
			c.ProjectSlug, slug, err = str(d)
		case "org_slug":
			c.OrgSlug, org, err = str(d)
		case "team_slug":
			c.TeamSlug, err = optStr(d)
		case "environment":
			c.Environment, err = optStr(d)
		case "actor_user_id":
			c.ActorUserID, err = optStr(d)
		case "assignment_options":
			c.AssignmentOptions, err = anyMap(d)
		case "environment_config":
			c.EnvironmentConfig, err = anyMap(d)
		case "project_links":
			c.ProjectLinks, err = strMap(d)
		case "project_type_slugs": // an array of strings, or null
			var tok jsontext.Token
			if tok, err = d.ReadToken(); err == nil && tok.Kind() != 'n' && tok.Kind() != '[' {
				err = errors.New("must be an array or null")
			}
			for err == nil && tok.Kind() == '[' && d.PeekKind() != ']' {
				var s string
				if s, ok, err = str(d); err == nil && !ok {
					err = errNotString
				}
				c.ProjectTypeSlugs = append(c.ProjectTypeSlugs, s)
			}
			if err == nil && tok.Kind() == '[' {
				_, err = d.ReadToken() // ']'
			}
		case "identity": // its own decoder; a local, so c stays on the stack
			var id *plugins.IdentityCredentials
			err = jsonv2.UnmarshalDecode(d, &id)
			c.Identity = id
		default:
			err = d.SkipValue()
		}
		return err
	})
	if err == nil && (!id || !slug || !org) {
		err = missing(map[string]bool{"project_id": id, "project_slug": slug, "org_slug": org})
	}
	c.AssignmentOptions, c.EnvironmentConfig = orEmpty(c.AssignmentOptions), orEmpty(c.EnvironmentConfig)
	c.ProjectLinks = orEmpty(c.ProjectLinks)
	return obj, err
}

// object reads an object, calling member with each name (unescaped; valid
// until the next read) to read its value; null gives false.
func object(d *jsontext.Decoder, member func(name []byte) error) (bool, error) {
	tok, err := d.ReadToken()
	if err != nil || tok.Kind() == 'n' {
		return false, err
	} else if tok.Kind() != '{' {
		return false, errNotObject
	}
	for d.PeekKind() == '"' {
		name, err := d.ReadValue()
		if err == nil {
			err = member(unquote(name))
		}
		if err != nil {
			return true, err
		}
	}
	_, err = d.ReadToken() // '}', or the error at a bad name
	return true, err
}

// unquote returns a JSON string's contents, unescaped.
func unquote(v jsontext.Value) []byte {
	if bytes.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1]
	}
	b, _ := jsontext.AppendUnquote(nil, v) // jsontext checked it
	return b
}

// str reads a string; null gives "" and false.
func str(d *jsontext.Decoder) (string, bool, error) {
	v, err := d.ReadValue()
	if err != nil || v.Kind() == 'n' {
		return "", false, err
	} else if v.Kind() != '"' {
		return "", false, errNotString
	}
	return string(unquote(v)), true, nil
}

// optStr reads a string or null (nil).
func optStr(d *jsontext.Decoder) (*string, error) {
	s, ok, err := str(d)
	if !ok {
		return nil, err
	}
	return &s, err
}

// integer reads an integer in int's range, or null (0); json/v2 rejects
// 1.0 and 1e2 as ints too.
func integer(d *jsontext.Decoder) (int, error) {
	v, err := d.ReadValue()
	if err != nil || v.Kind() == 'n' {
		return 0, err
	}
	n, err := strconv.ParseInt(string(v), 10, 0) // fails on "1", true, 1.0
	if err != nil {
		return 0, errors.New("must be an integer in int's range")
	}
	return int(n), nil
}

// strMap reads an object whose values are strings, or null (nil).
func strMap(d *jsontext.Decoder) (map[string]string, error) {
	var m map[string]string
	if d.PeekKind() == '{' {
		m = make(map[string]string, 4)
	}
	_, err := object(d, func(name []byte) error {
		k := string(name)
		s, ok, err := str(d)
		if err == nil && !ok {
			err = errNotString
		}
		m[k] = s
		return err
	})
	return m, err
}

// anyMap reads an object of any values, or null (nil).
func anyMap(d *jsontext.Decoder) (map[string]any, error) {
	if k := d.PeekKind(); k != '{' && k != 'n' {
		return nil, errNotObject
	}
	var v any // json/v2's own path for any (a map type takes the reflective one)
	err := jsonv2.UnmarshalDecode(d, &v)
	m, _ := v.(map[string]any)
	return m, err
}

func orEmpty[M ~map[string]V, V any](m M) M {
	if m == nil {
		return M{}
	}
	return m
}
