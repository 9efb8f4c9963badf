package plugins

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"
)

// Models of the configuration, logs, deployment and lifecycle kinds
// (plugins-spec §4.11–§4.14). JSON names, declaration order, defaults and
// constraints are Python's; decoding applies the defaults and rejects
// missing required fields and values outside the closed sets with a
// *ValidationError naming the field. Encoding emits every field.

// ---- configuration (§4.11) ----

// ConfigValue is a value to store under a key.
type ConfigValue struct {
	DataType string `json:"data_type"`
	Value    string `json:"value"`
	Secret   bool   `json:"secret"`
}

// ConfigKey is a key without its value.
type ConfigKey struct {
	Key          string     `json:"key"`
	DataType     string     `json:"data_type"`
	LastModified *time.Time `json:"last_modified"`
	Secret       bool       `json:"secret"`
}

// ConfigKeyWithValue is ConfigKey plus its value.
type ConfigKeyWithValue struct {
	Key          string     `json:"key"`
	DataType     string     `json:"data_type"`
	LastModified *time.Time `json:"last_modified"`
	Secret       bool       `json:"secret"`
	Value        string     `json:"value"`
}

func (v ConfigValue) MarshalJSON() ([]byte, error) {
	type plain ConfigValue
	return encodeModel(plain(v))
}

func (v *ConfigValue) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("ConfigValue", data)
	if err != nil {
		return err
	}
	var x ConfigValue
	field(d, "data_type", &x.DataType, required, parseString)
	field(d, "value", &x.Value, required, parseString)
	field(d, "secret", &x.Secret, withDefault, parseBool)
	return store(d, v, x)
}

func (k ConfigKey) MarshalJSON() ([]byte, error) {
	type plain ConfigKey
	return encodeModel(plain(k))
}

func (k *ConfigKey) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("ConfigKey", data)
	if err != nil {
		return err
	}
	var x ConfigKey
	decodeConfigKey(d, &x)
	return store(d, k, x)
}

func decodeConfigKey(d *objectDecoder, x *ConfigKey) {
	field(d, "key", &x.Key, required, parseString)
	field(d, "data_type", &x.DataType, required, parseString)
	field(d, "last_modified", &x.LastModified, nullable, optTime)
	field(d, "secret", &x.Secret, withDefault, parseBool)
}

func (k ConfigKeyWithValue) MarshalJSON() ([]byte, error) {
	type plain ConfigKeyWithValue
	return encodeModel(plain(k))
}

func (k *ConfigKeyWithValue) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("ConfigKeyWithValue", data)
	if err != nil {
		return err
	}
	var base ConfigKey
	decodeConfigKey(d, &base)
	x := ConfigKeyWithValue{Key: base.Key, DataType: base.DataType, LastModified: base.LastModified, Secret: base.Secret}
	field(d, "value", &x.Value, required, parseString)
	return store(d, k, x)
}

// ---- logs (§4.12) ----

// LogFilterOp is LogFilter.op.
type LogFilterOp string

const (
	OpEq         LogFilterOp = "eq"
	OpNe         LogFilterOp = "ne"
	OpContains   LogFilterOp = "contains"
	OpStartsWith LogFilterOp = "starts_with"
	OpRegex      LogFilterOp = "regex"
)

var logFilterOps = []LogFilterOp{OpEq, OpNe, OpContains, OpStartsWith, OpRegex}

// LogFilter is one search predicate.
type LogFilter struct {
	Field string      `json:"field"`
	Op    LogFilterOp `json:"op"`
	Value string      `json:"value"`
}

// DefaultLogLimit is LogQuery.limit's default.
const DefaultLogLimit = 100

// LogQuery is a logs search. Neither limit nor start<end is validated
// (Python does not either). Limit defaults to 100 when decoded.
type LogQuery struct {
	StartTime time.Time   `json:"start_time"`
	EndTime   time.Time   `json:"end_time"`
	Filters   []LogFilter `json:"filters"`
	Limit     int         `json:"limit"`
	Cursor    *string     `json:"cursor"`
	Levels    []string    `json:"levels"`
}

// LogEntry is one log line. Unknown keys are kept in Extra and encoded
// after the declared fields (pydantic extra='allow'), sorted by key
// because Go maps have no order.
type LogEntry struct {
	Timestamp time.Time      `json:"timestamp"`
	Message   string         `json:"message"`
	Level     *string        `json:"level"`
	Raw       map[string]any `json:"raw"`
	// Extra holds keys outside the four declared ones.
	Extra map[string]any `json:"-"`
}

// LogHistogramBucket is one time bucket of event counts.
type LogHistogramBucket struct {
	Timestamp time.Time      `json:"timestamp"`
	Count     int            `json:"count"`
	Levels    map[string]int `json:"levels"`
}

// LogResult is one page of search results.
type LogResult struct {
	Entries    []LogEntry `json:"entries"`
	NextCursor *string    `json:"next_cursor"`
	Total      *int       `json:"total"`
	Warnings   []string   `json:"warnings"`
}

func (f LogFilter) MarshalJSON() ([]byte, error) {
	type plain LogFilter
	return encodeModel(plain(f))
}

func (f *LogFilter) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("LogFilter", data)
	if err != nil {
		return err
	}
	var x LogFilter
	field(d, "field", &x.Field, required, parseString)
	field(d, "op", &x.Op, required, parseEnum(logFilterOps...))
	field(d, "value", &x.Value, required, parseString)
	return store(d, f, x)
}

func (q LogQuery) MarshalJSON() ([]byte, error) {
	type plain LogQuery
	return encodeModel(plain(q))
}

func (q *LogQuery) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("LogQuery", data)
	if err != nil {
		return err
	}
	x := LogQuery{Limit: DefaultLogLimit}
	field(d, "start_time", &x.StartTime, required, parseTime)
	field(d, "end_time", &x.EndTime, required, parseTime)
	field(d, "filters", &x.Filters, withDefault, parseList(model[LogFilter]()))
	field(d, "limit", &x.Limit, withDefault, parseInt)
	field(d, "cursor", &x.Cursor, nullable, optStr)
	field(d, "levels", &x.Levels, withDefault, strList)
	return store(d, q, x)
}

var logEntryFields = []string{"timestamp", "message", "level", "raw"}

func (e LogEntry) MarshalJSON() ([]byte, error) {
	type plain struct {
		Timestamp time.Time      `json:"timestamp"`
		Message   string         `json:"message"`
		Level     *string        `json:"level"`
		Raw       map[string]any `json:"raw"`
	}
	out, err := encodeModel(plain{e.Timestamp, e.Message, e.Level, e.Raw})
	if err != nil || len(e.Extra) == 0 {
		return out, err
	}
	keys := make([]string, 0, len(e.Extra))
	for k := range e.Extra {
		if !slices.Contains(logEntryFields, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	buf := bytes.NewBuffer(out[:len(out)-1])
	for _, k := range keys {
		kb, _ := json.Marshal(k)
		vb, err := marshalNoEscape(e.Extra[k])
		if err != nil {
			return nil, err
		}
		buf.WriteByte(',')
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func (e *LogEntry) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("LogEntry", data)
	if err != nil {
		return err
	}
	var x LogEntry
	field(d, "timestamp", &x.Timestamp, required, parseTime)
	field(d, "message", &x.Message, required, parseString)
	field(d, "level", &x.Level, nullable, optStr)
	field(d, "raw", &x.Raw, withDefault, anyMap)
	if extra := d.unknown(logEntryFields...); len(extra) > 0 {
		x.Extra = map[string]any{}
		for k, raw := range extra {
			v, err := parseAny(raw)
			if err != nil {
				return prefixLoc("LogEntry", k, err)
			}
			x.Extra[k] = v
		}
	}
	return store(d, e, x)
}

func (b LogHistogramBucket) MarshalJSON() ([]byte, error) {
	type plain LogHistogramBucket
	return encodeModel(plain(b))
}

func (b *LogHistogramBucket) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("LogHistogramBucket", data)
	if err != nil {
		return err
	}
	var x LogHistogramBucket
	field(d, "timestamp", &x.Timestamp, required, parseTime)
	field(d, "count", &x.Count, required, parseInt)
	field(d, "levels", &x.Levels, withDefault, intMap)
	return store(d, b, x)
}

func (r LogResult) MarshalJSON() ([]byte, error) {
	type plain LogResult
	return encodeModel(plain(r))
}

func (r *LogResult) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("LogResult", data)
	if err != nil {
		return err
	}
	var x LogResult
	field(d, "entries", &x.Entries, required, parseList(model[LogEntry]()))
	field(d, "next_cursor", &x.NextCursor, nullable, optStr)
	field(d, "total", &x.Total, nullable, optInt)
	field(d, "warnings", &x.Warnings, withDefault, strList)
	return store(d, r, x)
}

// ---- deployment (§4.13) ----

// RefKind is Ref.kind.
type RefKind string

const (
	RefBranch  RefKind = "branch"
	RefTag     RefKind = "tag"
	RefDefault RefKind = "default"
)

var refKinds = []RefKind{RefBranch, RefTag, RefDefault}

// RefListKind is ListRefs' kind argument; "" means RefListAll.
type RefListKind string

const (
	RefListDefault RefListKind = "default"
	RefListBranch  RefListKind = "branch"
	RefListTag     RefListKind = "tag"
	RefListAll     RefListKind = "all"
)

// PRState is Ref.pr_state.
type PRState string

const (
	PROpen   PRState = "open"
	PRClosed PRState = "closed"
	PRMerged PRState = "merged"
)

var prStates = []PRState{PROpen, PRClosed, PRMerged}

// CheckStatus is a commit's CI verdict.
type CheckStatus string

const (
	CheckPass    CheckStatus = "pass"
	CheckFail    CheckStatus = "fail"
	CheckWarn    CheckStatus = "warn"
	CheckUnknown CheckStatus = "unknown"
)

var checkStatuses = []CheckStatus{CheckPass, CheckFail, CheckWarn, CheckUnknown}

// DeploymentRunStatus is DeploymentRun.status.
type DeploymentRunStatus string

const (
	RunQueued     DeploymentRunStatus = "queued"
	RunInProgress DeploymentRunStatus = "in_progress"
	RunSuccess    DeploymentRunStatus = "success"
	RunFailure    DeploymentRunStatus = "failure"
	RunCancelled  DeploymentRunStatus = "cancelled"
	RunUnknown    DeploymentRunStatus = "unknown"
)

var runStatuses = []DeploymentRunStatus{RunQueued, RunInProgress, RunSuccess, RunFailure, RunCancelled, RunUnknown}

// DeploymentEventStatus is RemoteDeployment.status.
type DeploymentEventStatus string

const (
	EventPending    DeploymentEventStatus = "pending"
	EventInProgress DeploymentEventStatus = "in_progress"
	EventSuccess    DeploymentEventStatus = "success"
	EventFailed     DeploymentEventStatus = "failed"
	EventRolledBack DeploymentEventStatus = "rolled_back"
)

var eventStatuses = []DeploymentEventStatus{EventPending, EventInProgress, EventSuccess, EventFailed, EventRolledBack}

// Ref is a branch, tag or the default branch.
type Ref struct {
	Name      string   `json:"name"`
	Kind      RefKind  `json:"kind"`
	SHA       string   `json:"sha"`
	IsDefault bool     `json:"is_default"`
	Ahead     *int     `json:"ahead"`
	Behind    *int     `json:"behind"`
	PRNumber  *int     `json:"pr_number"`
	PRTitle   *string  `json:"pr_title"`
	PRState   *PRState `json:"pr_state"`
}

// Commit is one commit. CIStatus defaults to "unknown" when decoded.
type Commit struct {
	SHA        string      `json:"sha"`
	ShortSHA   string      `json:"short_sha"`
	Message    string      `json:"message"`
	Author     *string     `json:"author"`
	AuthoredAt *time.Time  `json:"authored_at"`
	URL        *string     `json:"url"`
	CIStatus   CheckStatus `json:"ci_status"`
	PRNumber   *int        `json:"pr_number"`
	IsHead     bool        `json:"is_head"`
}

// CompareResult is base...head.
type CompareResult struct {
	BaseSHA      string   `json:"base_sha"`
	HeadSHA      string   `json:"head_sha"`
	Ahead        int      `json:"ahead"`
	Behind       int      `json:"behind"`
	Commits      []Commit `json:"commits"`
	FilesChanged int      `json:"files_changed"`
	Additions    int      `json:"additions"`
	Deletions    int      `json:"deletions"`
	PRNumbers    []int    `json:"pr_numbers"`
}

// RefInfo is a created tag.
type RefInfo struct {
	Name string  `json:"name"`
	SHA  string  `json:"sha"`
	URL  *string `json:"url"`
}

// ReleaseInfo is a created release.
type ReleaseInfo struct {
	ID         string  `json:"id"`
	Tag        string  `json:"tag"`
	Name       *string `json:"name"`
	URL        *string `json:"url"`
	HTMLURL    *string `json:"html_url"`
	Prerelease bool    `json:"prerelease"`
}

// WorkflowFile is a deploy workflow. State defaults to "active".
type WorkflowFile struct {
	ID    string `json:"id"`
	Path  string `json:"path"`
	Name  string `json:"name"`
	State string `json:"state"`
}

// DeploymentRun is a triggered run. Status defaults to "queued".
type DeploymentRun struct {
	RunID       string              `json:"run_id"`
	RunURL      *string             `json:"run_url"`
	Status      DeploymentRunStatus `json:"status"`
	StartedAt   *time.Time          `json:"started_at"`
	CompletedAt *time.Time          `json:"completed_at"`
}

// RemoteDeployment is a deployment seen on the remote side.
type RemoteDeployment struct {
	Environment   string                `json:"environment"`
	SHA           string                `json:"sha"`
	Ref           *string               `json:"ref"`
	Status        DeploymentEventStatus `json:"status"`
	CreatedAt     time.Time             `json:"created_at"`
	ExternalRunID string                `json:"external_run_id"`
	RunURL        *string               `json:"run_url"`
	DeploymentURL *string               `json:"deployment_url"`
	Description   *string               `json:"description"`
}

func (r Ref) MarshalJSON() ([]byte, error) {
	type plain Ref
	return encodeModel(plain(r))
}

func (r *Ref) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("Ref", data)
	if err != nil {
		return err
	}
	var x Ref
	field(d, "name", &x.Name, required, parseString)
	field(d, "kind", &x.Kind, required, parseEnum(refKinds...))
	field(d, "sha", &x.SHA, required, parseString)
	field(d, "is_default", &x.IsDefault, withDefault, parseBool)
	field(d, "ahead", &x.Ahead, nullable, optInt)
	field(d, "behind", &x.Behind, nullable, optInt)
	field(d, "pr_number", &x.PRNumber, nullable, optInt)
	field(d, "pr_title", &x.PRTitle, nullable, optStr)
	field(d, "pr_state", &x.PRState, nullable, ptr(parseEnum(prStates...)))
	return store(d, r, x)
}

func (c Commit) MarshalJSON() ([]byte, error) {
	type plain Commit
	return encodeModel(plain(c))
}

func (c *Commit) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("Commit", data)
	if err != nil {
		return err
	}
	x := Commit{CIStatus: CheckUnknown}
	field(d, "sha", &x.SHA, required, parseString)
	field(d, "short_sha", &x.ShortSHA, required, parseString)
	field(d, "message", &x.Message, required, parseString)
	field(d, "author", &x.Author, nullable, optStr)
	field(d, "authored_at", &x.AuthoredAt, nullable, optTime)
	field(d, "url", &x.URL, nullable, optStr)
	field(d, "ci_status", &x.CIStatus, withDefault, parseEnum(checkStatuses...))
	field(d, "pr_number", &x.PRNumber, nullable, optInt)
	field(d, "is_head", &x.IsHead, withDefault, parseBool)
	return store(d, c, x)
}

func (c CompareResult) MarshalJSON() ([]byte, error) {
	type plain CompareResult
	return encodeModel(plain(c))
}

func (c *CompareResult) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("CompareResult", data)
	if err != nil {
		return err
	}
	var x CompareResult
	field(d, "base_sha", &x.BaseSHA, required, parseString)
	field(d, "head_sha", &x.HeadSHA, required, parseString)
	field(d, "ahead", &x.Ahead, required, parseInt)
	field(d, "behind", &x.Behind, required, parseInt)
	field(d, "commits", &x.Commits, withDefault, parseList(model[Commit]()))
	field(d, "files_changed", &x.FilesChanged, withDefault, parseInt)
	field(d, "additions", &x.Additions, withDefault, parseInt)
	field(d, "deletions", &x.Deletions, withDefault, parseInt)
	field(d, "pr_numbers", &x.PRNumbers, withDefault, intList)
	return store(d, c, x)
}

func (r RefInfo) MarshalJSON() ([]byte, error) {
	type plain RefInfo
	return encodeModel(plain(r))
}

func (r *RefInfo) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("RefInfo", data)
	if err != nil {
		return err
	}
	var x RefInfo
	field(d, "name", &x.Name, required, parseString)
	field(d, "sha", &x.SHA, required, parseString)
	field(d, "url", &x.URL, nullable, optStr)
	return store(d, r, x)
}

func (r ReleaseInfo) MarshalJSON() ([]byte, error) {
	type plain ReleaseInfo
	return encodeModel(plain(r))
}

func (r *ReleaseInfo) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("ReleaseInfo", data)
	if err != nil {
		return err
	}
	var x ReleaseInfo
	field(d, "id", &x.ID, required, parseString)
	field(d, "tag", &x.Tag, required, parseString)
	field(d, "name", &x.Name, nullable, optStr)
	field(d, "url", &x.URL, nullable, optStr)
	field(d, "html_url", &x.HTMLURL, nullable, optStr)
	field(d, "prerelease", &x.Prerelease, withDefault, parseBool)
	return store(d, r, x)
}

func (w WorkflowFile) MarshalJSON() ([]byte, error) {
	type plain WorkflowFile
	return encodeModel(plain(w))
}

func (w *WorkflowFile) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("WorkflowFile", data)
	if err != nil {
		return err
	}
	x := WorkflowFile{State: "active"}
	field(d, "id", &x.ID, required, parseString)
	field(d, "path", &x.Path, required, parseString)
	field(d, "name", &x.Name, required, parseString)
	field(d, "state", &x.State, withDefault, parseString)
	return store(d, w, x)
}

func (r DeploymentRun) MarshalJSON() ([]byte, error) {
	type plain DeploymentRun
	return encodeModel(plain(r))
}

func (r *DeploymentRun) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("DeploymentRun", data)
	if err != nil {
		return err
	}
	x := DeploymentRun{Status: RunQueued}
	field(d, "run_id", &x.RunID, required, parseString)
	field(d, "run_url", &x.RunURL, nullable, optStr)
	field(d, "status", &x.Status, withDefault, parseEnum(runStatuses...))
	field(d, "started_at", &x.StartedAt, nullable, optTime)
	field(d, "completed_at", &x.CompletedAt, nullable, optTime)
	return store(d, r, x)
}

func (r RemoteDeployment) MarshalJSON() ([]byte, error) {
	type plain RemoteDeployment
	return encodeModel(plain(r))
}

func (r *RemoteDeployment) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("RemoteDeployment", data)
	if err != nil {
		return err
	}
	var x RemoteDeployment
	field(d, "environment", &x.Environment, required, parseString)
	field(d, "sha", &x.SHA, required, parseString)
	field(d, "ref", &x.Ref, nullable, optStr)
	field(d, "status", &x.Status, required, parseEnum(eventStatuses...))
	field(d, "created_at", &x.CreatedAt, required, parseTime)
	field(d, "external_run_id", &x.ExternalRunID, required, parseString)
	field(d, "run_url", &x.RunURL, nullable, optStr)
	field(d, "deployment_url", &x.DeploymentURL, nullable, optStr)
	field(d, "description", &x.Description, nullable, optStr)
	return store(d, r, x)
}

// ---- lifecycle (§4.14) ----

// LifecycleStatus is LifecycleResult.status.
type LifecycleStatus string

const (
	LifecycleOK      LifecycleStatus = "ok"
	LifecycleSkipped LifecycleStatus = "skipped"
	LifecycleFailed  LifecycleStatus = "failed"
)

var lifecycleStatuses = []LifecycleStatus{LifecycleOK, LifecycleSkipped, LifecycleFailed}

// LifecycleResult is what a lifecycle hook reports.
type LifecycleResult struct {
	Status    LifecycleStatus   `json:"status"`
	Message   *string           `json:"message"`
	Artifacts map[string]string `json:"artifacts"`
}

func (r LifecycleResult) MarshalJSON() ([]byte, error) {
	type plain LifecycleResult
	return encodeModel(plain(r))
}

func (r *LifecycleResult) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("LifecycleResult", data)
	if err != nil {
		return err
	}
	var x LifecycleResult
	field(d, "status", &x.Status, required, parseEnum(lifecycleStatuses...))
	field(d, "message", &x.Message, nullable, optStr)
	field(d, "artifacts", &x.Artifacts, withDefault, strMap)
	return store(d, r, x)
}

// ---- PluginContext (§4.9) ----

func (c PluginContext) MarshalJSON() ([]byte, error) {
	type plain PluginContext
	return encodeModel(plain(c))
}

func (c *PluginContext) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("PluginContext", data)
	if err != nil {
		return err
	}
	var x PluginContext
	field(d, "project_id", &x.ProjectID, required, parseString)
	field(d, "project_slug", &x.ProjectSlug, required, parseString)
	field(d, "org_slug", &x.OrgSlug, required, parseString)
	field(d, "team_slug", &x.TeamSlug, nullable, optStr)
	field(d, "environment", &x.Environment, nullable, optStr)
	// The envelope schema allows null for these four; null reads as empty.
	field(d, "assignment_options", &x.AssignmentOptions, nullMeansDefault, anyMap)
	field(d, "project_links", &x.ProjectLinks, nullMeansDefault, strMap)
	field(d, "project_type_slugs", &x.ProjectTypeSlugs, nullMeansDefault, strList)
	field(d, "environment_config", &x.EnvironmentConfig, nullMeansDefault, anyMap)
	field(d, "actor_user_id", &x.ActorUserID, nullable, optStr)
	field(d, "identity", &x.Identity, nullable, ptr(model[IdentityCredentials]()))
	return store(d, c, x)
}
