package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// newDocsCmd is hidden: it prints reference material generated from the
// command tree, which docs/operations.md embeds (a test keeps the two equal).
func newDocsCmd() *cobra.Command {
	docs := &cobra.Command{
		Use:    "docs",
		Short:  "Print generated reference documentation",
		Hidden: true,
	}
	docs.AddCommand(&cobra.Command{
		Use:   "flags",
		Short: "Print every flag and its IMBI_* environment variable as Markdown",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return WriteFlagReference(cmd.OutOrStdout(), NewRootCmd())
		},
	})
	return docs
}

// ExtraEnv is an environment variable read directly (not through a flag).
type ExtraEnv struct {
	Name, Description string
}

// ExtraEnvironment lists the variables the worker reads that are not a
// flag's IMBI_* twin. The docs test checks each still appears in the code.
var ExtraEnvironment = []ExtraEnv{
	{"IMBI_AUTH_ENCRYPTION_KEY", "Fernet key (urlsafe base64 of 32 bytes) that decrypts plugin credentials; the same setting as imbi's Python services."},
	{"IMBI_AUTH_ENCRYPTION_KEYS", "Comma-separated Fernet keys for rotation: the first encrypts, every key decrypts. Wins over IMBI_AUTH_ENCRYPTION_KEY."},
	{"IMBI_PLUGIN_TIMEOUT_SECONDS", "Default action deadline in seconds when the action declares none (10)."},
	{"IMBI_ADMIN_TOKEN", "Turns the operator console on (/ui/, /api/v1/ on the admin server; docs/api.md): the bearer token and login secret. Unset: the console is off."},
	{"OTEL_SERVICE_NAME", "service.name of traces and metrics (default imbi-worker)."},
	{"OTEL_RESOURCE_ATTRIBUTES", "Extra resource attributes, key=value,..."},
	{"OTEL_TRACES_EXPORTER", "otlp or none. Unset: traces are exported only when an OTLP endpoint is set."},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTLP collector endpoint; setting it turns trace export on."},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTLP endpoint for traces only."},
	{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf (default) or grpc; OTEL_EXPORTER_OTLP_TRACES_PROTOCOL for traces only."},
	{"OTEL_EXPORTER_OTLP_HEADERS", "Headers sent to the collector (e.g. an API key), read by the OTLP exporter."},
	{"OTEL_TRACES_SAMPLER", "Sampler (default parentbased_always_on); OTEL_TRACES_SAMPLER_ARG its argument."},
}

// WriteFlagReference writes one Markdown table per command that has flags
// (flag, IMBI_* variable, default, description), then the extra
// environment variables. Output is deterministic: commands and flags sorted.
func WriteFlagReference(w io.Writer, root *cobra.Command) error {
	var b strings.Builder
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		var flags []*pflag.Flag
		add := func(f *pflag.Flag) {
			if f.Name != "help" && !f.Hidden {
				flags = append(flags, f)
			}
		}
		if c == root {
			c.PersistentFlags().VisitAll(add)
		} else {
			c.LocalNonPersistentFlags().VisitAll(add)
			c.PersistentFlags().VisitAll(add)
		}
		if len(flags) > 0 {
			sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
			title := c.CommandPath()
			if c == root {
				title += " (global flags)"
			}
			fmt.Fprintf(&b, "### `%s`\n\n", title)
			b.WriteString("| Flag | Environment | Default | Description |\n|---|---|---|---|\n")
			for _, f := range flags {
				env := "`" + EnvName(f.Name) + "`"
				if commandLineOnly(f) {
					env = "(command line only)"
				}
				fmt.Fprintf(&b, "| `--%s` | %s | %s | %s |\n",
					f.Name, env, defaultCell(f), cell(f.Usage))
			}
			b.WriteString("\n")
		}
		subs := c.Commands()
		sort.Slice(subs, func(i, j int) bool { return subs[i].Name() < subs[j].Name() })
		for _, s := range subs {
			walk(s)
		}
	}
	walk(root)

	b.WriteString("### Other environment variables\n\n| Variable | Description |\n|---|---|\n")
	for _, e := range ExtraEnvironment {
		fmt.Fprintf(&b, "| `%s` | %s |\n", e.Name, cell(e.Description))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func defaultCell(f *pflag.Flag) string {
	switch v := f.DefValue; {
	case v == "", v == "[]":
		return ""
	case f.Value.Type() == "bool" && v == "false":
		return ""
	default:
		return "`" + cell(v) + "`"
	}
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}
