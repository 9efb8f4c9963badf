"""Pydantic models mirroring imbi_common.plugins at 57ad45b5 (imbi-common 2.5.0).

imbi-common is not served by the package index here, so these models are
written from docs/../plugins-spec.md §3-§4 (field names, order, defaults,
constraints). gen_fixtures.py and check_roundtrip.py share them.
"""

from __future__ import annotations

import datetime
import typing

import pydantic

PluginType = typing.Literal['configuration', 'logs', 'identity', 'deployment', 'lifecycle', 'webhook']
AuthType = typing.Literal['api_token', 'oauth2', 'oidc', 'aws-iam-ic']


class PluginOption(pydantic.BaseModel):
    name: str
    label: str
    description: str | None = None
    type: typing.Literal['string', 'integer', 'boolean', 'secret'] = 'string'
    required: bool = False
    default: str | int | bool | None = None
    choices: list[str] | None = None


class CredentialField(pydantic.BaseModel):
    name: str
    label: str
    description: str | None = None
    required: bool = True


class DataType(pydantic.BaseModel):
    name: str
    label: str
    secret: bool = False


class PluginIndex(pydantic.BaseModel):
    fields: list[str]
    unique: bool = False

    @pydantic.field_validator('fields')
    @classmethod
    def _check_fields(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError('PluginIndex.fields must contain at least one field name')
        for f in value:
            if not f.strip():
                raise ValueError('PluginIndex.fields entries must be non-empty and non-whitespace')
        return value


class PluginVertexLabel(pydantic.BaseModel):
    name: str
    indexes: list[PluginIndex] = []
    model_ref: str
    display_name: str | None = None
    description: str | None = None
    nav_label: str | None = None


class PluginEdgeLabel(pydantic.BaseModel):
    name: str
    from_labels: list[str]
    to_labels: list[str]
    properties: dict[str, str] = {}


class OpsLogTemplate(pydantic.BaseModel):
    label: str
    summary: str | None = None


class PluginManifest(pydantic.BaseModel):
    slug: str
    name: str
    description: str | None = None
    plugin_type: PluginType
    auth_type: AuthType = 'api_token'
    api_version: int = 1
    cacheable: bool = True
    supports_histogram: bool = False
    supports_deployment_sync: bool = False
    login_capable: bool = False
    requires_identity: bool = False
    default_scopes: list[str] = []
    options: list[PluginOption] = []
    credentials: list[CredentialField] = []
    data_types: list[DataType] = []
    vertex_labels: list[PluginVertexLabel] = []
    edge_labels: list[PluginEdgeLabel] = []
    widget_text: str | None = None
    ops_log_templates: dict[str, OpsLogTemplate] = {}


class IdentityCredentials(pydantic.BaseModel):
    access_token: str
    token_type: str = 'Bearer'
    expires_at: datetime.datetime | None = None
    refresh_token: str | None = None
    scopes: list[str] = []
    extra: dict[str, typing.Any] = {}

    def __repr__(self) -> str:
        return '<IdentityCredentials redacted>'

    __str__ = __repr__


class IdentityProfile(pydantic.BaseModel):
    subject: str
    email: str | None = None
    email_verified: bool = False
    name: str | None = None
    avatar_url: str | None = None
    groups: list[str] = []
    raw_claims: dict[str, typing.Any] = {}


class PollingDescriptor(pydantic.BaseModel):
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None = None
    interval: int = 5
    expires_in: int


class AuthorizationRequest(pydantic.BaseModel):
    authorization_url: str
    state: str
    code_verifier: str | None = None
    polling: PollingDescriptor | None = None
    registered_credentials: dict[str, str] | None = None


class PluginContext(pydantic.BaseModel):
    project_id: str
    project_slug: str
    org_slug: str
    team_slug: str | None = None
    environment: str | None = None
    assignment_options: dict[str, typing.Any] = {}
    project_links: dict[str, str] = {}
    project_type_slugs: list[str] = []
    environment_config: dict[str, typing.Any] = {}
    actor_user_id: str | None = None
    identity: IdentityCredentials | None = None


class ConfigValue(pydantic.BaseModel):
    data_type: str
    value: str
    secret: bool = False


class ConfigKey(pydantic.BaseModel):
    key: str
    data_type: str
    last_modified: datetime.datetime | None = None
    secret: bool = False


class ConfigKeyWithValue(ConfigKey):
    value: str


class LogFilter(pydantic.BaseModel):
    field: str
    op: typing.Literal['eq', 'ne', 'contains', 'starts_with', 'regex']
    value: str


class LogQuery(pydantic.BaseModel):
    start_time: datetime.datetime
    end_time: datetime.datetime
    filters: list[LogFilter] = []
    limit: int = 100
    cursor: str | None = None
    levels: list[str] = []


class LogEntry(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra='allow')

    timestamp: datetime.datetime
    message: str
    level: str | None = None
    raw: dict[str, typing.Any] = {}


class LogHistogramBucket(pydantic.BaseModel):
    timestamp: datetime.datetime
    count: int
    levels: dict[str, int] = {}


class LogResult(pydantic.BaseModel):
    entries: list[LogEntry]
    next_cursor: str | None = None
    total: int | None = None
    warnings: list[str] = []


CheckStatus = typing.Literal['pass', 'fail', 'warn', 'unknown']
DeploymentEventStatus = typing.Literal['pending', 'in_progress', 'success', 'failed', 'rolled_back']


class Ref(pydantic.BaseModel):
    name: str
    kind: typing.Literal['branch', 'tag', 'default']
    sha: str
    is_default: bool = False
    ahead: int | None = None
    behind: int | None = None
    pr_number: int | None = None
    pr_title: str | None = None
    pr_state: typing.Literal['open', 'closed', 'merged'] | None = None


class Commit(pydantic.BaseModel):
    sha: str
    short_sha: str
    message: str
    author: str | None = None
    authored_at: datetime.datetime | None = None
    url: str | None = None
    ci_status: CheckStatus = 'unknown'
    pr_number: int | None = None
    is_head: bool = False


class CompareResult(pydantic.BaseModel):
    base_sha: str
    head_sha: str
    ahead: int
    behind: int
    commits: list[Commit] = []
    files_changed: int = 0
    additions: int = 0
    deletions: int = 0
    pr_numbers: list[int] = []


class RefInfo(pydantic.BaseModel):
    name: str
    sha: str
    url: str | None = None


class ReleaseInfo(pydantic.BaseModel):
    id: str
    tag: str
    name: str | None = None
    url: str | None = None
    html_url: str | None = None
    prerelease: bool = False


class WorkflowFile(pydantic.BaseModel):
    id: str
    path: str
    name: str
    state: str = 'active'


class DeploymentRun(pydantic.BaseModel):
    run_id: str
    run_url: str | None = None
    status: typing.Literal['queued', 'in_progress', 'success', 'failure', 'cancelled', 'unknown'] = 'queued'
    started_at: datetime.datetime | None = None
    completed_at: datetime.datetime | None = None


class RemoteDeployment(pydantic.BaseModel):
    environment: str
    sha: str
    ref: str | None = None
    status: DeploymentEventStatus
    created_at: datetime.datetime
    external_run_id: str
    run_url: str | None = None
    deployment_url: str | None = None
    description: str | None = None


class LifecycleResult(pydantic.BaseModel):
    status: typing.Literal['ok', 'skipped', 'failed']
    message: str | None = None
    artifacts: dict[str, str] = {}


MODELS: dict[str, type[pydantic.BaseModel]] = {
    cls.__name__: cls
    for cls in (
        PluginOption, CredentialField, DataType, PluginIndex, PluginVertexLabel,
        PluginEdgeLabel, OpsLogTemplate, PluginManifest, IdentityCredentials,
        IdentityProfile, PollingDescriptor, AuthorizationRequest, PluginContext,
        ConfigValue, ConfigKey, ConfigKeyWithValue, LogFilter, LogQuery, LogEntry,
        LogHistogramBucket, LogResult, Ref, Commit, CompareResult, RefInfo,
        ReleaseInfo, WorkflowFile, DeploymentRun, RemoteDeployment, LifecycleResult,
    )
}
