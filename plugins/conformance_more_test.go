package plugins_test

// Conformance: test_errors.py (cases 80–91), test_schemas.py (113–125)
// and test_templates.py (126–134) of plugins-spec §12.

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// Cases 80–91: each Python exception class is a Go error type whose text
// is the raiser's message and which errors.Is/As find through wrapping.
func TestErrorTypes(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		sentinel error
		message  string
	}{
		{"plugin_not_found", &plugins.PluginNotFoundError{Message: "test-slug"}, plugins.ErrPluginNotFound, "test-slug"},
		{"plugin_unavailable", &plugins.PluginUnavailableError{Message: "test-slug"}, plugins.ErrPluginUnavailable, "test-slug"},
		{"cursor_expired", &plugins.CursorExpiredError{Message: "cursor-123"}, plugins.ErrCursorExpired, "cursor-123"},
		{"plugin_timeout", &plugins.PluginTimeoutError{Message: "timed out after 30s"}, plugins.ErrPluginTimeout, "timed out after 30s"},
		{"credentials_missing", &plugins.PluginCredentialsMissing{Message: "api_key"}, plugins.ErrCredentialsMissing, "api_key"},
		{"authentication_failed", &plugins.PluginAuthenticationFailed{Message: "401 from upstream"}, plugins.ErrAuthenticationFailed, "401 from upstream"},
	}
	for _, tc := range tests {
		t.Run(tc.name+"_is_exception", func(t *testing.T) {
			// "is an Exception subclass": it is a Go error and only its
			// own sentinel matches it.
			require.Implements(t, (*error)(nil), tc.err)
			require.ErrorIs(t, tc.err, tc.sentinel)
			for _, other := range tests {
				if other.name != tc.name {
					require.False(t, errors.Is(tc.err, other.sentinel), other.name)
				}
			}
		})
		t.Run(tc.name+"_can_be_raised", func(t *testing.T) {
			raised := func() error { return fmtWrap(tc.err) }
			err := raised()
			require.ErrorIs(t, err, tc.sentinel)
			require.Equal(t, tc.message, errors.Unwrap(err).Error())
		})
	}
	var nf *plugins.PluginNotFoundError
	require.True(t, errors.As(fmtWrap(&plugins.PluginNotFoundError{Message: "x"}), &nf))
	require.Equal(t, "x", nf.Message)
}

func fmtWrap(err error) error { return &wrapped{err} }

type wrapped struct{ err error }

func (w *wrapped) Error() string { return "wrapped: " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

func manifestWith(slug string, v []plugins.PluginVertexLabel, e []plugins.PluginEdgeLabel) plugins.PluginManifest {
	m := plugins.NewManifest(slug, slug, plugins.TypeConfiguration)
	m.VertexLabels, m.EdgeLabels = v, e
	return m
}

// Cases 122–125: PluginIndex validation, from JSON and from Go.
func TestPluginIndexValidation(t *testing.T) {
	tests := []struct {
		name   string
		fields string
		want   string
	}{
		{"empty_fields_rejected", `[]`, "must contain at least one field name"},
		{"empty_string_field_rejected", `[""]`, "must be non-empty and non-whitespace"},
		{"whitespace_field_rejected", `["   "]`, "must be non-empty and non-whitespace"},
		{"one_empty_among_many_rejected", `["account_id",""]`, "must be non-empty and non-whitespace"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := jsonDecode[plugins.PluginIndex](`{"fields":` + tc.fields + `}`)
			requireFieldError(t, err, "fields", tc.want)
			// Nested in a manifest the loc names the path.
			_, err = jsonDecode[plugins.PluginManifest](`{"slug":"s","name":"n","plugin_type":"logs",
				"vertex_labels":[{"name":"V","model_ref":"m","indexes":[{"fields":` + tc.fields + `}]}]}`)
			requireFieldError(t, err, "vertex_labels.0.indexes.0.fields", tc.want)
			// A Go-built manifest is caught by Validate (the registry runs it).
			var fields []string
			_ = jsonUnmarshal(tc.fields, &fields)
			m := manifestWith("s", []plugins.PluginVertexLabel{{Name: "V", ModelRef: "m", Indexes: []plugins.PluginIndex{{Fields: fields}}}}, nil)
			requireFieldError(t, m.Validate(), "vertex_labels.0.indexes.0.fields", tc.want)
		})
	}
}

const allowed = "allowed: ['environment', 'org_slug', 'project_id', 'project_slug', 'team_slug']"

// Cases 126–129.
func TestValidateTemplate(t *testing.T) {
	tests := []struct {
		name, template, wantErr string
	}{
		{"valid", "${project_slug}/logs/${environment}", ""},
		{"unknown_var", "${unknown_var}", "Unknown template variable ${unknown_var}; " + allowed},
		{"all_allowed_vars", "${project_slug}${org_slug}${environment}${project_id}${team_slug}", ""},
		{"mixed_valid_invalid", "${project_slug}/${bad}/${worse}", "Unknown template variable ${bad}; " + allowed},
		// Edge cases of §9.
		{"empty_name_is_not_a_placeholder", "${}-$name-${project_slug", ""},
		{"spaces_are_part_of_the_name", "${ project_slug }", "Unknown template variable ${ project_slug }; " + allowed},
		{"case_sensitive", "${Project_Slug}", "Unknown template variable ${Project_Slug}; " + allowed},
		{"nested", "${a${project_slug}}", "Unknown template variable ${a${project_slug}; " + allowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := plugins.ValidateTemplate(tc.template)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			var te *plugins.TemplateError
			require.ErrorAs(t, err, &te)
			require.EqualError(t, err, tc.wantErr)
		})
	}
}

// Cases 130–134.
func TestExpandTemplate(t *testing.T) {
	tests := []struct {
		name, template string
		vars           map[string]string
		want, wantErr  string
	}{
		{"expand", "${project_slug}-${environment}", map[string]string{"project_slug": "myapp", "environment": "prod"}, "myapp-prod", ""},
		{"missing_var", "${project_slug}-${environment}", map[string]string{"project_slug": "myapp"}, "myapp-", ""},
		{"all_vars", "${project_slug}/${org_slug}/${environment}/${project_id}",
			map[string]string{"project_slug": "my-app", "org_slug": "acme", "environment": "staging", "project_id": "abc123"}, "my-app/acme/staging/abc123", ""},
		{"rejects_unknown_var", "${project_slug}-${nope}", map[string]string{"project_slug": "x", "nope": "y"}, "", "Unknown template variable ${nope}; " + allowed},
		{"repeated", "${project_slug}.${project_slug}", map[string]string{"project_slug": "a"}, "a.a", ""},
		{"nil_vars", "x-${team_slug}", nil, "x-", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := plugins.ExpandTemplate(tc.template, tc.vars)
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	// Case 133: Python's None value. In Go the value comes from a nil
	// context field, which TemplateVars leaves out.
	t.Run("none_value", func(t *testing.T) {
		vars := plugins.TemplateVars(plugins.PluginContext{ProjectID: "p", ProjectSlug: "myapp", OrgSlug: "o", Environment: nil})
		got, err := plugins.ExpandTemplate("${project_slug}-${environment}-${team_slug}", vars)
		require.NoError(t, err)
		require.Equal(t, "myapp--", got)
	})
}
