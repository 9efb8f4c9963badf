package plugins_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// A webhook action with a typed config: the JSON Schema comes from the
// struct, handler_config is validated and decoded before the action runs.
func ExampleNewAction() {
	type Config struct {
		Repository string `json:"repository" jsonschema:"minLength=1"`
		Draft      bool   `json:"draft,omitempty"`
	}
	openPR := func(_ context.Context, in plugins.ActionInput[Config]) error {
		fmt.Printf("open PR on %s for %s (draft=%v)\n", in.Config.Repository, in.Context.ProjectSlug, in.Config.Draft)
		return nil
	}
	action, err := plugins.NewAction("open_pr", "Open a pull request", openPR)
	if err != nil {
		panic(err)
	}
	cfg, err := action.DecodeConfig(json.RawMessage(`{"repository":"acme/api"}`))
	if err != nil {
		panic(err)
	}
	_ = action.Run(context.Background(), plugins.Invocation{
		Context: plugins.PluginContext{ProjectID: "p1", ProjectSlug: "api", OrgSlug: "acme"},
		Config:  cfg,
	})
	_, err = action.DecodeConfig(json.RawMessage(`{"repository":""}`))
	fmt.Println(err != nil)
	// Output:
	// open PR on acme/api for api (draft=false)
	// true
}

// Templates expand the five whitelisted names; a nil context field
// expands to "".
func ExampleExpandTemplate() {
	env := "production"
	vars := plugins.TemplateVars(plugins.PluginContext{ProjectID: "p1", ProjectSlug: "api", OrgSlug: "acme", Environment: &env})
	s, _ := plugins.ExpandTemplate("/${org_slug}/${project_slug}/${environment}/${team_slug}", vars)
	fmt.Println(s)
	_, err := plugins.ExpandTemplate("${project}", vars)
	fmt.Println(err)
	// Output:
	// /acme/api/production/
	// Unknown template variable ${project}; allowed: ['environment', 'org_slug', 'project_id', 'project_slug', 'team_slug']
}

// Optional capabilities are found by type assertion; the helpers give
// Python's defaults when a plugin lacks one.
func ExampleHistogram() {
	var logs plugins.LogsPlugin = stubLogs{} // no Histogram method
	buckets, err := plugins.Histogram(context.Background(), logs, testCtx, nil, plugins.LogQuery{}, 0)
	fmt.Println(len(buckets), err)
	// Output: 0 <nil>
}

// Registration from a plugin package's init function: the name keys the
// plugin's load errors in the worker. An empty or reused name panics at
// start; a bad plugin value is reported when the worker loads it.
func ExampleRegister() {
	// In the plugin package: func init() { plugins.Register("archiver", Archiver{}) }
	plugins.Register("example-archiver", Archiver{})
	defer func() { fmt.Println(recover()) }()
	plugins.Register("example-archiver", Archiver{})
	// Output: plugins: "example-archiver" registered twice
}
