package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aweber-imbi/imbi-worker/internal/registry"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// actionsReport is the stable --json shape of `imbi-worker actions`.
// Fields are only ever added, never renamed.
type actionsReport struct {
	Plugins []pluginReport `json:"plugins"`
	// Errors are load errors by registration name (Python's entry-point
	// name); Skipped are registrations with an unsupported api_version.
	Errors  map[string]string `json:"errors"`
	Skipped []string          `json:"skipped"`
	// LoadError is a registry-wide failure (schema collision); the
	// plugins listed are then the previous snapshot (empty at start).
	LoadError *string `json:"load_error"`
}

type pluginReport struct {
	Slug         string         `json:"slug"`
	Name         string         `json:"name"`
	Kind         string         `json:"kind"`
	Registration string         `json:"registration"`
	Package      string         `json:"package"`
	Version      string         `json:"version"`
	APIVersion   int            `json:"api_version"`
	Credentials  []string       `json:"credentials"`
	Actions      []actionReport `json:"actions"`
	// Host is the plugin host (service id) that served a remote plugin's
	// catalog; absent for plugins compiled into this binary.
	Host string `json:"host,omitempty"`
}

type actionReport struct {
	Name           string          `json:"name"`
	Handler        string          `json:"handler"`
	Label          string          `json:"label"`
	Description    *string         `json:"description"`
	TimeoutSeconds *float64        `json:"timeout_seconds"`
	ConfigSchema   json.RawMessage `json:"config_schema"`
}

func newActionsCmd() *cobra.Command {
	var asJSON bool
	var natsURL string
	cmd := &cobra.Command{
		Use:   "actions",
		Short: "List registered plugins and their webhook actions",
		Long: "List every plugin compiled into this binary (slug, kind, package, version, load errors)\n" +
			"and the webhook actions it offers, with each action's handler_config JSON Schema.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg := registry.Default()
			if natsURL != "" {
				r, closeFn, err := remoteRegistry(cmd.Context(), natsURL)
				if err != nil {
					return err
				}
				defer closeFn()
				reg = r
			}
			rep := buildActionsReport(reg)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return writeActionsTable(cmd.OutOrStdout(), rep)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print machine-readable JSON (stable shape)")
	cmd.Flags().StringVar(&natsURL, "nats-url", "", "also list the remote actions of the Python plugin hosts on this NATS server")
	markCommandLineOnly(cmd.Flags(), "json")
	return cmd
}

func buildActionsReport(r *registry.Registry) actionsReport {
	res, loadErr := r.LastLoad()
	rep := actionsReport{Plugins: []pluginReport{}, Errors: map[string]string{}, Skipped: []string{}}
	for k, v := range res.Errors {
		rep.Errors[k] = v
	}
	rep.Skipped = append(rep.Skipped, res.Skipped...)
	if loadErr != nil {
		msg := loadErr.Error()
		rep.LoadError = &msg
	}
	for _, e := range r.List() {
		p := pluginReport{
			Slug: e.Manifest.Slug, Name: e.Manifest.Name, Kind: string(e.Manifest.PluginType),
			Registration: e.Name, Package: e.PackageName, Version: e.PackageVersion,
			APIVersion: e.Manifest.APIVersion, Credentials: []string{}, Actions: []actionReport{},
		}
		if h, ok := e.Plugin.(interface{ Host() string }); ok {
			p.Host = h.Host()
		}
		for _, c := range e.Manifest.Credentials {
			p.Credentials = append(p.Credentials, c.Name)
		}
		for _, a := range e.Actions() {
			ar := actionReport{Name: a.Name, Label: a.Label, Description: a.Description,
				Handler: wire.Handler{Plugin: e.Manifest.Slug, Action: a.Name}.String(), ConfigSchema: a.ConfigSchema()}
			if a.Timeout > 0 {
				s := a.Timeout.Seconds()
				ar.TimeoutSeconds = &s
			}
			p.Actions = append(p.Actions, ar)
		}
		rep.Plugins = append(rep.Plugins, p)
	}
	return rep
}

// writeActionsTable is the human form: one row per action (a plugin
// without actions gets one row), then load problems. Schemas are only in
// --json; they are too wide for a terminal.
func writeActionsTable(w io.Writer, rep actionsReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLUGIN\tKIND\tPACKAGE\tVERSION\tHANDLER\tLABEL")
	for _, p := range rep.Plugins {
		if len(p.Actions) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t-\t-\n", p.Slug, p.Kind, p.Package, p.Version)
		}
		for _, a := range p.Actions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Slug, p.Kind, p.Package, p.Version, a.Handler, a.Label)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Plugins) == 0 {
		fmt.Fprintln(w, "(no plugins registered)")
	}
	names := make([]string, 0, len(rep.Errors))
	for n := range rep.Errors {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "load error: %s: %s\n", n, rep.Errors[n])
	}
	if len(rep.Skipped) > 0 {
		fmt.Fprintf(w, "skipped (unsupported api_version): %s\n", strings.Join(rep.Skipped, ", "))
	}
	if rep.LoadError != nil {
		fmt.Fprintf(w, "registry load failed: %s\n", *rep.LoadError)
	}
	return nil
}
