package creds

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// PluginCredentials is Python's get_plugin_credentials (plugins-spec §10.4):
// auth_type api_token and aws-iam-ic read the plugin's own encrypted
// configuration; every other auth type reads the linked ServiceApplication.
//
// The Plugin node must belong to m's plugin: its plugin_slug must be
// m.Slug (checked in the query, so another plugin's secret is never read).
//
// Errors: *plugins.PluginCredentialsMissing (permanent; wrapping
// *PluginOwnerError when the node belongs to another plugin) or
// *StoreError (Neo4j unreachable after retries). Texts never carry a
// secret.
func (s *Store) PluginCredentials(ctx context.Context, pluginID string, m plugins.PluginManifest) (plugins.Credentials, error) {
	return s.ServicePluginCredentials(ctx, "", pluginID, m)
}

// ServicePluginCredentials is PluginCredentials for an event from
// third-party service service: when service is not empty the Plugin node
// must also be attached to it ((:ThirdPartyService)-[:HAS_PLUGIN]->), as
// it is when the gateway looked it up.
func (s *Store) ServicePluginCredentials(ctx context.Context, service, pluginID string, m plugins.PluginManifest) (plugins.Credentials, error) {
	owner := PluginOwnerError{PluginID: pluginID, Slug: m.Slug, Service: service}
	switch m.AuthType {
	case plugins.AuthAPIToken, plugins.AuthAWSIAMIC:
		return s.configurationCredentials(ctx, owner, m)
	default:
		return s.applicationCredentials(ctx, owner)
	}
}

// PluginOwnerError: the Plugin node an event names (plugin.id) is not the
// handler's plugin, or not attached to the event's third-party service.
// Its credentials are not read. Wrapped in *plugins.PluginCredentialsMissing.
type PluginOwnerError struct {
	PluginID string // the event's plugin.id
	Slug     string // the handler's plugin slug
	Service  string // the event's third_party_service ("" when absent)
}

func (e *PluginOwnerError) Error() string {
	msg := fmt.Sprintf("Plugin node %q does not belong to plugin '%s'", e.PluginID, e.Slug)
	if e.Service != "" {
		msg += fmt.Sprintf(" of third-party service '%s'", e.Service)
	}
	return msg + ": the event's plugin.id names another plugin's node; no credentials were read"
}

// readOwned runs one of the owned reads (cypherReadOwnedConfig,
// cypherReadOwnedApp). rec is nil when there is no such node; a node of
// another plugin is a *plugins.PluginCredentialsMissing.
func (s *Store) readOwned(ctx context.Context, name, cypher string, owner PluginOwnerError) (*neo4j.Record, error) {
	recs, err := s.query(ctx, name, cypher, map[string]any{
		"plugin_id": owner.PluginID, "plugin_slug": owner.Slug, "service": owner.Service}, false)
	if err != nil {
		return nil, &StoreError{Op: "read " + name, Err: err}
	}
	if len(recs) == 0 {
		return nil, nil
	}
	// owned is null when the node has no plugin_slug: not owned either.
	if owned, _ := valueOf(recs[0], "owned").(bool); !owned {
		e := owner
		return nil, &plugins.PluginCredentialsMissing{Message: e.Error(), Err: &e}
	}
	return recs[0], nil
}

// configurationCredentials is §10.5. Every unreadable blob degrades to {}
// (then "missing" if anything is required), as in Python.
func (s *Store) configurationCredentials(ctx context.Context, owner PluginOwnerError, m plugins.PluginManifest) (plugins.Credentials, error) {
	pluginID := owner.PluginID
	rec, err := s.readOwned(ctx, "read_configuration", cypherReadOwnedConfig, owner)
	if err != nil {
		return nil, err
	}
	var raw any
	if rec != nil {
		raw = valueOf(rec, "creds")
	}
	data := newObject()
	if !isEmpty(raw) {
		plain, ok, err := s.decrypt(raw)
		switch {
		case err != nil:
			s.log.WarnContext(ctx, "Plugin credentials decrypt failed for plugin_id="+pluginID,
				"plugin_id", pluginID, "error", err.Error())
		case ok && plain != "":
			v, err := decodeJSON([]byte(plain))
			if err != nil {
				s.log.WarnContext(ctx, "Plugin credentials JSON parse failed for plugin_id="+pluginID,
					"plugin_id", pluginID)
			} else if o, isObject := v.(*object); isObject {
				data = o
			} else {
				// Deviation: Python crashes with AttributeError here
				// (§10.5 EDGE); the worker reads it as {} and says so.
				s.log.WarnContext(ctx, "Plugin credentials JSON is not an object for plugin_id="+pluginID,
					"plugin_id", pluginID)
			}
		}
	}
	var missing []string
	for _, name := range m.RequiredCredentials() {
		if v, ok := data.get(name); !ok || !truthy(v) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, &plugins.PluginCredentialsMissing{
			Message: fmt.Sprintf("Missing required credentials for plugin '%s': %s", m.Slug, pyList(missing)),
		}
	}
	out := make(plugins.Credentials, len(data.keys))
	for _, k := range data.keys {
		if v := data.values[k]; v != nil {
			out[k] = pyStr(v)
		}
	}
	return out, nil
}

// applicationCredentials is §10.6: exactly client_id and client_secret of
// the linked ServiceApplication; the manifest's fields are not consulted.
func (s *Store) applicationCredentials(ctx context.Context, owner PluginOwnerError) (plugins.Credentials, error) {
	pluginID, slug := owner.PluginID, owner.Slug
	rec, err := s.readOwned(ctx, "read_application", cypherReadOwnedApp, owner)
	if err != nil {
		return nil, err
	}
	if rec == nil || valueOf(rec, "linked") != true {
		return nil, &plugins.PluginCredentialsMissing{
			Message: fmt.Sprintf("Plugin '%s' is not linked to a ServiceApplication; pick one on the Plugins tab", slug),
		}
	}
	clientID, secret := valueOf(rec, "client_id"), valueOf(rec, "client_secret")
	if clientID == nil || secret == nil {
		return nil, &plugins.PluginCredentialsMissing{
			Message: fmt.Sprintf("Linked ServiceApplication for plugin '%s' is missing client_id or client_secret", slug),
		}
	}
	plain, ok, err := s.decrypt(secret)
	if err != nil {
		s.log.WarnContext(ctx, "client_secret decrypt failed for plugin_id="+pluginID,
			"plugin_id", pluginID, "error", err.Error())
		return nil, &plugins.PluginCredentialsMissing{
			Message: fmt.Sprintf("Linked ServiceApplication for plugin '%s' has a client_secret that could not be decrypted", slug),
			Err:     err,
		}
	}
	if !ok || plain == "" {
		return nil, &plugins.PluginCredentialsMissing{
			Message: fmt.Sprintf("Linked ServiceApplication for plugin '%s' has no client_secret", slug),
		}
	}
	return plugins.Credentials{"client_id": neo4jStr(clientID), "client_secret": plain}, nil
}

// neo4jStr is Python's str() of a property value the driver returns.
func neo4jStr(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case bool:
		if t {
			return "True"
		}
		return "False"
	case int64:
		return strconv.FormatInt(t, 10)
	case float64:
		return pyFloatRepr(t)
	default:
		return fmt.Sprint(t)
	}
}

// ConfigurationError is Python's ValueError from the strict reader: the
// stored blob cannot be read, so nothing may overwrite it.
type ConfigurationError struct {
	PluginID string
	Reason   string // e.g. "could not be decrypted"
	Err      error
}

func (e *ConfigurationError) Error() string {
	return fmt.Sprintf("plugin_configuration for plugin_id='%s' %s; refusing to overwrite", e.PluginID, e.Reason)
}
func (e *ConfigurationError) Unwrap() error { return e.Err }

// readStrict is §10.8's strict reader: a blob that cannot be read is an
// error, never {}.
func (s *Store) readStrict(ctx context.Context, pluginID string) (*object, error) {
	raw, _, err := s.readConfigValue(ctx, pluginID)
	if err != nil {
		return nil, err
	}
	if isEmpty(raw) {
		return newObject(), nil
	}
	plain, ok, err := s.decrypt(raw)
	if err != nil {
		return nil, &ConfigurationError{PluginID: pluginID, Reason: "could not be decrypted", Err: err}
	}
	if !ok {
		return nil, &ConfigurationError{PluginID: pluginID, Reason: "decrypted to None"}
	}
	v, err := decodeJSON([]byte(plain))
	if err != nil {
		return nil, &ConfigurationError{PluginID: pluginID, Reason: "is not valid JSON"}
	}
	o, isObject := v.(*object)
	if !isObject {
		return nil, &ConfigurationError{PluginID: pluginID, Reason: "must be a JSON object"}
	}
	return o, nil
}

// Update is one change for PatchConfiguration: an empty Value deletes Key.
// Python also deletes on None; Go callers pass "" for both.
type Update struct {
	Key   string
	Value string
}

// PatchConfiguration is Python's patch_plugin_configuration (§10.7): read
// strictly (a corrupt blob is a *ConfigurationError and nothing is
// written), apply the updates in order (existing keys keep their place, new
// keys are appended), encrypt the whole map and write it. Returns the keys
// with truthy values in map order, never values. A missing Plugin node
// matches nothing and is not an error, as in Python.
func (s *Store) PatchConfiguration(ctx context.Context, pluginID string, updates []Update) ([]string, error) {
	data, err := s.readStrict(ctx, pluginID)
	if err != nil {
		return nil, err
	}
	for _, u := range updates {
		if u.Value == "" {
			data.delete(u.Key)
		} else {
			data.set(u.Key, u.Value)
		}
	}
	blob, err := s.cipher.Encrypt(string(encodeJSON(data)))
	if err != nil {
		return nil, fmt.Errorf("encrypt plugin_configuration: %w", err)
	}
	params := map[string]any{"plugin_id": pluginID, "blob": blob}
	if _, err := s.query(ctx, "write_configuration", cypherWriteConfig, params, true); err != nil {
		return nil, &StoreError{Op: "write plugin_configuration", Err: err}
	}
	return truthyKeys(data), nil
}

// ConfigurationKeys is Python's get_plugin_configuration_keys (§10.8):
// the keys with truthy values; an unreadable blob logs a WARNING and
// reports none. Only a Neo4j failure is an error.
func (s *Store) ConfigurationKeys(ctx context.Context, pluginID string) ([]string, error) {
	data, err := s.readStrict(ctx, pluginID)
	var unreadable *ConfigurationError
	switch {
	case errors.As(err, &unreadable):
		s.log.WarnContext(ctx, "plugin_configuration unreadable for plugin_id="+pluginID+"; reporting no keys",
			"plugin_id", pluginID, "reason", unreadable.Reason)
		return []string{}, nil
	case err != nil:
		return nil, err
	}
	return truthyKeys(data), nil
}

func truthyKeys(o *object) []string {
	keys := []string{}
	for _, k := range o.keys {
		if truthy(o.values[k]) {
			keys = append(keys, k)
		}
	}
	return keys
}

// FindPluginID finds the Plugin node by third-party-service slug and plugin
// slug (wire-contract §3, used when the envelope has no plugin.id). found is
// false when there is none; more than one match is an error, since the
// credentials would be a guess.
func (s *Store) FindPluginID(ctx context.Context, serviceSlug, pluginSlug string) (id string, found bool, err error) {
	recs, err := s.query(ctx, "find_plugin", cypherFindPlugin,
		map[string]any{"service": serviceSlug, "plugin_slug": pluginSlug}, false)
	if err != nil {
		return "", false, &StoreError{Op: "find Plugin", Err: err}
	}
	switch len(recs) {
	case 0:
		return "", false, nil
	case 1:
		id, _ := valueOf(recs[0], "id").(string)
		return id, id != "", nil
	default:
		return "", false, &AmbiguousPluginError{Service: serviceSlug, PluginSlug: pluginSlug}
	}
}

// AmbiguousPluginError: a service has several Plugin nodes with one slug, so
// the envelope must name plugin.id.
type AmbiguousPluginError struct{ Service, PluginSlug string }

func (e *AmbiguousPluginError) Error() string {
	return fmt.Sprintf("third-party service '%s' has more than one plugin '%s'; the event must carry plugin.id", e.Service, e.PluginSlug)
}

// PluginSlug returns the plugin_slug of the Plugin node with id (found is
// false when there is no such node).
func (s *Store) PluginSlug(ctx context.Context, pluginID string) (slug string, found bool, err error) {
	recs, err := s.query(ctx, "plugin_slug", cypherPluginSlug, map[string]any{"plugin_id": pluginID}, false)
	if err != nil {
		return "", false, &StoreError{Op: "read Plugin", Err: err}
	}
	if len(recs) == 0 {
		return "", false, nil
	}
	slug, _ = valueOf(recs[0], "plugin_slug").(string)
	return slug, true, nil
}
