package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/metric"

	"github.com/aweber-imbi/imbi-worker/internal/creds"
	"github.com/aweber-imbi/imbi-worker/internal/registry"
	"github.com/aweber-imbi/imbi-worker/plugins"
)

// neo4jFlags are the credential-store settings shared by `creds` and
// `run`: --neo4j-url (IMBI_NEO4J_URL) and friends. The Fernet keys are
// read from IMBI_AUTH_ENCRYPTION_KEY(S) only, never from a flag, so they
// do not show up in process listings.
type neo4jFlags struct {
	url, user, password, database string
}

func (f *neo4jFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.url, "neo4j-url", "", "Bolt URL of the Neo4j credential store, e.g. bolt://127.0.0.1:7687 (unset: no store)")
	fs.StringVar(&f.user, "neo4j-user", "neo4j", "Neo4j user")
	fs.StringVar(&f.password, "neo4j-password", "", "Neo4j password (prefer the IMBI_NEO4J_PASSWORD variable: flags show in process listings)")
	fs.StringVar(&f.database, "neo4j-database", "neo4j", "Neo4j database")
}

func (f *neo4jFlags) config() creds.Config {
	return creds.Config{URL: f.url, User: f.user, Password: f.password, Database: f.database}
}

// openStore opens the credential store with the keyring from the
// environment. It refuses to run with a missing or invalid key: unlike
// Python, the worker never makes up a random one (docs/decisions/0004-credential-keys.md).
func (f *neo4jFlags) openStore(logger *slog.Logger, opts ...creds.Option) (*creds.Store, *creds.Keyring, error) {
	if f.url == "" {
		return nil, nil, creds.ErrNoURL
	}
	kr, err := creds.KeyringFromEnv(os.Getenv)
	if err != nil {
		return nil, nil, err
	}
	if logger != nil {
		opts = append([]creds.Option{creds.WithLogger(logger)}, opts...)
	}
	store, err := creds.Open(f.config(), kr, opts...)
	if err != nil {
		return nil, nil, err
	}
	return store, kr, nil
}

// registerCacheTTL adds --credentials-cache-ttl (IMBI_CREDENTIALS_CACHE_TTL).
func registerCacheTTL(fs *pflag.FlagSet, ttl *time.Duration) {
	fs.DurationVar(ttl, "credentials-cache-ttl", creds.DefaultCacheTTL,
		"how long a plugin's decrypted credentials are reused before Neo4j is asked again (0: no cache)")
}

// credentialSource builds the worker's dispatch.CredentialSource from the
// flags: nil (no store; actions needing credentials fail with
// credentials_missing) when --neo4j-url is empty, an error when a store is
// configured but the encryption key is missing or invalid. closeFn releases
// the Neo4j driver; the resolver's Ping serves readiness.
func (f *neo4jFlags) credentialSource(logger *slog.Logger, mp metric.MeterProvider, ttl time.Duration) (r *creds.Resolver, closeFn func(context.Context) error, err error) {
	if f.url == "" {
		return nil, func(context.Context) error { return nil }, nil
	}
	var opts []creds.Option
	if mp != nil {
		opts = append(opts, creds.WithMeterProvider(mp))
	}
	store, _, err := f.openStore(logger, opts...)
	if err != nil {
		return nil, nil, err
	}
	r, err = creds.NewResolver(store, append(opts, creds.WithCacheTTL(ttl))...)
	if err != nil {
		_ = store.Close(context.Background())
		return nil, nil, err
	}
	return r, store.Close, nil
}

func newCredsCmd() *cobra.Command {
	var nf neo4jFlags
	cmd := &cobra.Command{
		Use:   "creds",
		Short: "Inspect and change plugin credentials in Neo4j (names only, never values)",
		Long: "Plugin credentials live in Neo4j as Fernet tokens: Plugin.plugin_configuration (api_token,\n" +
			"aws-iam-ic) and ServiceApplication.client_secret (oauth2, oidc). These commands use the same\n" +
			"key as imbi (IMBI_AUTH_ENCRYPTION_KEY, or IMBI_AUTH_ENCRYPTION_KEYS for rotation) and never\n" +
			"print a secret value.",
	}
	nf.register(cmd.PersistentFlags())
	cmd.AddCommand(newCredsKeysCmd(&nf), newCredsSetCmd(&nf), newCredsCheckCmd(&nf), newCredsRotateCmd(&nf))
	return cmd
}

// withStore opens the store for one command and closes it afterwards.
func withStore(cmd *cobra.Command, nf *neo4jFlags, run func(ctx context.Context, s *creds.Store, kr *creds.Keyring) error) error {
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, kr, err := nf.openStore(logger)
	if err != nil {
		return err
	}
	defer store.Close(context.WithoutCancel(cmd.Context()))
	return run(cmd.Context(), store, kr)
}

func newCredsKeysCmd(nf *neo4jFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "keys <plugin-id>",
		Short: "List the names of a plugin's set configuration keys (values are never shown)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, nf, func(ctx context.Context, s *creds.Store, _ *creds.Keyring) error {
				if err := requirePlugin(ctx, s, args[0]); err != nil {
					return err
				}
				keys, err := s.ConfigurationKeys(ctx, args[0])
				if err != nil {
					return err
				}
				for _, k := range keys {
					fmt.Fprintln(cmd.OutOrStdout(), k)
				}
				return nil
			})
		},
	}
}

func requirePlugin(ctx context.Context, s *creds.Store, id string) error {
	_, found, err := s.PluginSlug(ctx, id)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("no Plugin node with id %q", id)
	}
	return nil
}

func newCredsSetCmd(nf *neo4jFlags) *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "set <plugin-id> [key=value ...]",
		Short: "Set or delete configuration keys of a plugin (patch: other keys are kept; empty value deletes)",
		Long: "Patch Plugin.plugin_configuration: each key=value sets a key, key= deletes it, keys not named\n" +
			"are kept. A blob that cannot be read is never overwritten. With --from-stdin the updates come\n" +
			"from standard input instead of the command line (keeps secrets out of shell history):\n" +
			"either a JSON object {\"key\": \"value\", \"gone\": null} or key=value lines.\n" +
			"Prints the names of the keys that are set afterwards.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var updates []creds.Update
			var err error
			switch {
			case fromStdin && len(args) > 1:
				return errors.New("give updates either as arguments or with --from-stdin, not both")
			case fromStdin:
				updates, err = readUpdates(cmd.InOrStdin())
			default:
				updates, err = parseAssignments(args[1:])
			}
			if err != nil {
				return err
			}
			if len(updates) == 0 {
				return errors.New("nothing to set: give key=value arguments or --from-stdin")
			}
			return withStore(cmd, nf, func(ctx context.Context, s *creds.Store, _ *creds.Keyring) error {
				if err := requirePlugin(ctx, s, args[0]); err != nil {
					return err
				}
				keys, err := s.PatchConfiguration(ctx, args[0], updates)
				if err != nil {
					return err
				}
				for _, k := range keys {
					fmt.Fprintln(cmd.OutOrStdout(), k)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "from-stdin", false, "read updates from standard input (JSON object or key=value lines)")
	return cmd
}

// parseAssignments turns key=value arguments into updates, in order. An
// error names the argument's position, never its value.
func parseAssignments(args []string) ([]creds.Update, error) {
	updates := make([]creds.Update, 0, len(args))
	for i, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("update %d is not key=value", i+1)
		}
		updates = append(updates, creds.Update{Key: k, Value: v})
	}
	return updates, nil
}

// readUpdates reads a JSON object (null or "" deletes; key order kept) or
// key=value lines (blank lines and # comments skipped).
func readUpdates(r io.Reader) ([]creds.Update, error) {
	raw, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, err
	}
	text := strings.TrimSpace(string(raw))
	if strings.HasPrefix(text, "{") || strings.HasPrefix(text, "[") {
		return jsonUpdates([]byte(text))
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return parseAssignments(lines)
}

// jsonUpdates decodes {"key": "value" | null} keeping the key order.
func jsonUpdates(data []byte) ([]creds.Update, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	bad := errors.New(`standard input must be a JSON object of strings or nulls, e.g. {"token": "…", "old": null}`)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, bad
	}
	var updates []creds.Update
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, bad
		}
		var v *string
		if err := dec.Decode(&v); err != nil {
			return nil, bad
		}
		u := creds.Update{Key: kt.(string)}
		if u.Key == "" {
			return nil, bad
		}
		if v != nil {
			u.Value = *v
		}
		updates = append(updates, u)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, bad
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad
	}
	return updates, nil
}

func newCredsCheckCmd(nf *neo4jFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "check <plugin-id>",
		Short: "Report which required credentials a plugin lacks, per its registered manifest",
		Long: "Looks up the Plugin node's plugin_slug, finds that plugin in this binary's registry and\n" +
			"resolves its credentials the way the worker does. Exits non-zero when something is missing.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, nf, func(ctx context.Context, s *creds.Store, _ *creds.Keyring) error {
				return checkCredentials(ctx, cmd.OutOrStdout(), s, registry.Default(), args[0])
			})
		},
	}
}

// errCheckFailed makes `creds check` exit non-zero after it has printed
// its findings.
var errCheckFailed = errors.New("credentials incomplete")

func checkCredentials(ctx context.Context, w io.Writer, s *creds.Store, reg *registry.Registry, id string) error {
	slug, found, err := s.PluginSlug(ctx, id)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("no Plugin node with id %q", id)
	}
	entry, err := reg.Get(slug)
	if err != nil {
		return fmt.Errorf("plugin %q (plugin_slug of %s) is not registered in this binary", slug, id)
	}
	m := entry.Manifest
	fmt.Fprintf(w, "plugin %s (%s), auth_type %s\n", id, slug, m.AuthType)
	switch m.AuthType {
	case plugins.AuthAPIToken, plugins.AuthAWSIAMIC:
		keys, err := s.ConfigurationKeys(ctx, id)
		if err != nil {
			return err
		}
		set := map[string]bool{}
		for _, k := range keys {
			set[k] = true
		}
		var missing []string
		for _, c := range m.Credentials {
			state := "set"
			switch {
			case !set[c.Name] && c.Required:
				state = "MISSING (required)"
				missing = append(missing, c.Name)
			case !set[c.Name]:
				state = "not set (optional)"
			}
			fmt.Fprintf(w, "  %-24s %s\n", c.Name, state)
		}
		if len(missing) > 0 {
			return fmt.Errorf("%w: missing %s", errCheckFailed, strings.Join(missing, ", "))
		}
	default:
		// The application path needs client_id and a decryptable
		// client_secret; the worker's own resolution says it best.
		if _, err := s.PluginCredentials(ctx, id, m); err != nil {
			var missing *plugins.PluginCredentialsMissing
			if errors.As(err, &missing) {
				fmt.Fprintf(w, "  %s\n", missing.Error())
				return errCheckFailed
			}
			return err
		}
		fmt.Fprintln(w, "  client_id, client_secret set (linked ServiceApplication)")
	}
	fmt.Fprintln(w, "ok")
	return nil
}

func newCredsRotateCmd(nf *neo4jFlags) *cobra.Command {
	var batch int
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Re-encrypt every plugin secret under the first key of IMBI_AUTH_ENCRYPTION_KEYS",
		Long: "Rotation: set IMBI_AUTH_ENCRYPTION_KEYS=new,old on every reader (they then decrypt both), run\n" +
			"`imbi-worker creds rotate`, then drop the old key. It rewrites Plugin.plugin_configuration and\n" +
			"ServiceApplication.client_secret values that an older key (or the legacy double-base64 form)\n" +
			"opens; values already under the first key are skipped, so it is idempotent and an interrupted\n" +
			"run (Ctrl-C included) is finished by running it again. Each write only replaces the exact value\n" +
			"it read, so a concurrent `creds set` is never undone.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, nf, func(ctx context.Context, s *creds.Store, kr *creds.Keyring) error {
				stats, err := s.Rotate(ctx, kr, batch)
				for _, st := range stats {
					fmt.Fprintln(cmd.OutOrStdout(), st.String())
				}
				return err
			})
		},
	}
	cmd.Flags().IntVar(&batch, "rotate-batch", creds.DefaultRotateBatch, "nodes read and written per query")
	return cmd
}
