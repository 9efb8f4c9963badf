package plugins_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// FuzzExpandTemplate: templates are operator-typed option values, expanded
// with project data on every call, so ExpandTemplate must never panic and
// must agree with an independent reading of the spec (§9: "${" one or more
// characters other than "}" "}", leftmost first, no escapes) on every
// input.
func FuzzExpandTemplate(f *testing.F) {
	for _, seed := range [][2]string{
		{"/aws/${org_slug}/${project_slug}", "acme"},
		{"${team_slug}-${environment}", ""},
		{"${unknown}", "x"},
		{"${}", "x"}, {"${", "x"}, {"}", "x"}, {"$${project_id}}", "{x}"},
		{"${a${project_id}", "v"}, {"${project_id\n}", "v"}, {"ä${project_id}ö", "ü"},
		{"${project_id}${project_id}", "${org_slug}"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, tmpl, value string) {
		vars := map[string]string{}
		for _, name := range plugins.TemplateVariables() {
			vars[name] = value
		}
		got, err := plugins.ExpandTemplate(tmpl, vars)
		want, unknown := referenceExpand(tmpl, vars)
		if verr := plugins.ValidateTemplate(tmpl); (verr == nil) != (err == nil) {
			t.Fatalf("ValidateTemplate(%q) = %v but ExpandTemplate error = %v", tmpl, verr, err)
		}
		if unknown != "" {
			var te *plugins.TemplateError
			if !errors.As(err, &te) {
				t.Fatalf("ExpandTemplate(%q) error = %v, want *TemplateError for %q", tmpl, err, unknown)
			}
			if te.Name != unknown {
				t.Fatalf("ExpandTemplate(%q) names %q, want the first unknown %q", tmpl, te.Name, unknown)
			}
			return
		}
		if err != nil {
			t.Fatalf("ExpandTemplate(%q) = %v; every placeholder is whitelisted", tmpl, err)
		}
		if got != want {
			t.Fatalf("ExpandTemplate(%q, %q) = %q, want %q", tmpl, value, got, want)
		}
	})
}

// referenceExpand expands without regular expressions; it returns the
// first placeholder name that is not whitelisted instead when there is one.
func referenceExpand(tmpl string, vars map[string]string) (out, unknown string) {
	allowed := plugins.TemplateVariables()
	var b strings.Builder
	for i := 0; i < len(tmpl); {
		if strings.HasPrefix(tmpl[i:], "${") {
			if j := strings.IndexByte(tmpl[i+2:], '}'); j > 0 {
				name := tmpl[i+2 : i+2+j]
				if !slices.Contains(allowed, name) {
					return "", name
				}
				b.WriteString(vars[name])
				i += 2 + j + 1
				continue
			}
		}
		b.WriteByte(tmpl[i])
		i++
	}
	return b.String(), ""
}
