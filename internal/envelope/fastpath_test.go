package envelope

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// checkAgree: the fast path may only accept what the schema accepts.
func checkAgree(t *testing.T, v *validator, data []byte) (fast, schema bool) {
	t.Helper()
	fast = fastValid(data)
	schema = v.validateSchema(data) == nil
	if fast && !schema {
		t.Fatalf("fast path accepts what the schema rejects: %s\nschema: %v", data, v.validateSchema(data))
	}
	return fast, schema
}

// mutations of a valid envelope: every property the schema names, set to
// every JSON type and some edge values, deleted, or its key re-cased.
func mutationCorpus(t *testing.T) [][]byte {
	t.Helper()
	paths := [][]string{
		{"rule"}, {"rule", "id"}, {"rule", "handler"}, {"rule", "handler_config"}, {"rule", "ordinal"},
		{"plugin"}, {"plugin", "id"}, {"plugin", "slug"},
		{"context"}, {"context", "project_id"}, {"context", "project_slug"}, {"context", "org_slug"},
		{"context", "team_slug"}, {"context", "environment"}, {"context", "assignment_options"},
		{"context", "project_links"}, {"context", "project_type_slugs"}, {"context", "environment_config"},
		{"context", "actor_user_id"}, {"context", "identity"},
		{"external_identifier"},
		{"event"}, {"event", "type"}, {"event", "third_party_service"}, {"event", "attributed_to"},
		{"event", "metadata"}, {"event", "metadata", "webhook_id"}, {"event", "metadata", "headers"},
		{"event", "payload"},
	}
	values := []any{
		nil, true, 0, 7, -3, 1.5, json.Number("1.0"), json.Number("1e2"), "", "x", "a#b", strings.Repeat("h", 256), strings.Repeat("h", 257),
		strings.Repeat("é", 256), strings.Repeat("é", 257), "\\u0041", []any{}, []any{"s"}, []any{1}, map[string]any{},
		map[string]any{"k": "v"}, map[string]any{"k": 1}, map[string]any{"k": nil},
	}
	base := func() map[string]any {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(validData), &m))
		return m
	}
	walk := func(m map[string]any, path []string) (map[string]any, string) {
		for _, p := range path[:len(path)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				return nil, ""
			}
			m = next
		}
		return m, path[len(path)-1]
	}
	var out [][]byte
	add := func(m map[string]any) {
		b, err := json.Marshal(m)
		require.NoError(t, err)
		out = append(out, b)
	}
	add(base())
	for _, path := range paths {
		m := base()
		parent, key := walk(m, path)
		if parent == nil {
			continue
		}
		delete(parent, key)
		add(m)

		m = base()
		parent, key = walk(m, path)
		parent[strings.ToUpper(key)] = parent[key]
		delete(parent, key)
		add(m)

		for _, v := range values {
			m = base()
			parent, key = walk(m, path)
			parent[key] = v
			add(m)
		}
	}
	// Whole-document shapes.
	for _, s := range []string{`null`, `[]`, `"x"`, `1`, `{}`, `{"rule":{}}`, `{`, ``, "{\"rule\":1}\n{}", "\xff"} {
		out = append(out, []byte(s))
	}
	// Duplicate keys: the last one wins for the schema.
	out = append(out, []byte(strings.Replace(validData, `"rule": {`, `"rule": 5, "rule": {`, 1)))
	out = append(out, []byte(strings.Replace(validData, `"rule": {`, `"rule": {"handler": "a#b"}, "rule": 5, "x": {`, 1)))
	// Escaped handler.
	out = append(out, []byte(strings.Replace(validData, `"github#create_issue"`, `"github\u0023create_issue"`, 1)))
	return out
}

// TestFastPathAgreesWithSchema: on the mutation corpus and the shared
// poison corpus, the fast path never accepts what the schema rejects, and
// it accepts every ordinary valid envelope (so the benchmark figure is
// the fast path's).
func TestFastPathAgreesWithSchema(t *testing.T) {
	t.Parallel()
	v, err := newValidator()
	require.NoError(t, err)
	corpus := mutationCorpus(t)
	corpus = append(corpus, poisonData(t)...)
	var schemaOK, fastOK int
	for _, doc := range corpus {
		fast, schema := checkAgree(t, v, doc)
		if schema {
			schemaOK++
		}
		if fast {
			fastOK++
		}
	}
	t.Logf("corpus %d docs: schema accepts %d, fast path accepts %d", len(corpus), schemaOK, fastOK)
	require.Greater(t, len(corpus), 500)
	require.Greater(t, schemaOK, 100)
	require.Less(t, schemaOK, len(corpus)-100)
	// Every schema-valid doc that uses no JSON escape in the handler and
	// only plain integer ordinals is taken by the fast path.
	require.GreaterOrEqual(t, float64(fastOK)/float64(schemaOK), 0.95)
	require.True(t, fastValid([]byte(validData)))
}

// poisonData returns the data member of every committed structured
// poison case (shared corpus of the chaos suite).
func poisonData(t *testing.T) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "poison", "*.json"))
	require.NoError(t, err)
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var ev map[string]json.RawMessage
		if json.Unmarshal(b, &ev) != nil || ev["data"] == nil {
			continue
		}
		out = append(out, ev["data"])
	}
	return out
}

// TestDecodeRejectsWhatSchemaRejects: whichever path validates, decode
// never returns an envelope the schema rejects, and accepts the valid
// ones (the typed decode agrees with the schema's types).
func TestDecodeRejectsWhatSchemaRejects(t *testing.T) {
	t.Parallel()
	v, err := newValidator()
	require.NoError(t, err)
	decoded := 0
	for _, doc := range mutationCorpus(t) {
		_, err := v.decode(doc)
		schemaErr := v.validateSchema(doc)
		if schemaErr != nil {
			require.Error(t, err, "decode accepted what the schema rejects: %s", doc)
			continue
		}
		if err == nil {
			decoded++
		}
	}
	require.Greater(t, decoded, 100)
}

// TestFastDecodeEqualsReference: on every corpus document the fast path
// accepts, the fast decode equals the reference decode field for field.
func TestFastDecodeEqualsReference(t *testing.T) {
	t.Parallel()
	corpus := append(mutationCorpus(t), poisonData(t)...)
	// Extra shapes for the typed context fields.
	for _, ctx := range []string{
		`{"project_id":"p","project_slug":"s","org_slug":"o"}`,
		`{"project_id":"p","project_slug":"s","org_slug":"o","assignment_options":null,"project_links":null,"project_type_slugs":null,"environment_config":null,"identity":null}`,
		`{"project_id":"p","project_slug":"s","org_slug":"o","assignment_options":{"n":1.5,"big":12345678901234567890,"l":[1,"a",null,{"x":true}]},"project_links":{"a":"b"},"project_type_slugs":["x","y"],"environment_config":{"e":{}}}`,
		`{"project_id":"p","project_slug":"s","org_slug":"o","identity":{"access_token":"t","token_type":"Bearer"}}`,
		`{"project_id":"\u00e9\n","project_slug":"s","org_slug":"o","team_slug":"t","environment":"prod","actor_user_id":"u"}`,
	} {
		corpus = append(corpus, []byte(`{"rule":{"handler":"a#b","handler_config":{"k":[1,2]},"ordinal":-3},"plugin":null,"context":`+ctx+`,"event":{"payload":{"n":1e3},"metadata":null}}`))
	}
	compared := 0
	for _, doc := range corpus {
		if !fastValid(doc) {
			continue
		}
		want, werr := referenceDecode(doc)
		got, ok := fastDecode(doc)
		if !ok {
			continue // handed to the reference decoder
		}
		require.NoError(t, werr, "fast path decoded what the reference rejects: %s", doc)
		require.Equal(t, want, got, "doc: %s", doc)
		compared++
	}
	require.Greater(t, compared, 200)
}
