package plugins

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Templates (plugins-spec §9): "${name}" placeholders over a fixed
// whitelist, used for option values such as log-group names.

// templatePlaceholder is Python's pattern: "${", one or more characters
// other than "}", "}". No trimming, no escapes, no defaults.
var templatePlaceholder = regexp.MustCompile(`\$\{([^}]+)\}`)

// templateVars is the whitelist, sorted as Python prints it. team_slug is
// included (the code at the chosen commit allows five names).
var templateVars = []string{"environment", "org_slug", "project_id", "project_slug", "team_slug"}

// TemplateVariables returns the allowed placeholder names, sorted.
func TemplateVariables() []string { return slices.Clone(templateVars) }

// TemplateError is Python's ValueError for an unknown placeholder.
type TemplateError struct{ Name string }

func (e *TemplateError) Error() string {
	quoted := make([]string, len(templateVars))
	for i, v := range templateVars {
		quoted[i] = "'" + v + "'"
	}
	return fmt.Sprintf("Unknown template variable ${%s}; allowed: [%s]", e.Name, strings.Join(quoted, ", "))
}

// ValidateTemplate returns a *TemplateError for the first placeholder,
// left to right, whose name is not whitelisted.
func ValidateTemplate(t string) error {
	for _, m := range templatePlaceholder.FindAllStringSubmatch(t, -1) {
		if !slices.Contains(templateVars, m[1]) {
			return &TemplateError{Name: m[1]}
		}
	}
	return nil
}

// ExpandTemplate validates t, then replaces every placeholder with its
// value in vars. An absent key expands to "": that is also how Python's
// None value maps (Go strings cannot be null; TemplateVars leaves nil
// context fields out). Extra keys are ignored.
func ExpandTemplate(t string, vars map[string]string) (string, error) {
	if err := ValidateTemplate(t); err != nil {
		return "", err
	}
	return templatePlaceholder.ReplaceAllStringFunc(t, func(m string) string {
		return vars[m[2:len(m)-1]]
	}), nil
}

// TemplateVars builds the template variables from a plugin context; a nil
// team_slug or environment (Python None) is left out, so it expands to "".
func TemplateVars(pctx PluginContext) map[string]string {
	vars := map[string]string{
		"project_id":   pctx.ProjectID,
		"project_slug": pctx.ProjectSlug,
		"org_slug":     pctx.OrgSlug,
	}
	if pctx.TeamSlug != nil {
		vars["team_slug"] = *pctx.TeamSlug
	}
	if pctx.Environment != nil {
		vars["environment"] = *pctx.Environment
	}
	return vars
}
