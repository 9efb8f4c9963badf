"""Regenerate the Python-made fixtures the Go SDK is tested against.

    python testdata/python/gen_fixtures.py   # writes testdata/python/*.json

valid.json:   [{name, model, input, dump}] - `input` is what a client may
              send (minimal, or needing lax coercion); `dump` is pydantic's
              model_dump(mode='json') of the validated value. Go must decode
              `input` and `dump` and re-encode both to exactly `dump`.
invalid.json: [{name, model, input, loc, type}] - inputs pydantic rejects,
              with the loc and type of its first error. Go must reject them
              naming the same field.

Models: imbi_models.py (imbi-common 2.5.0 is not served here; see there).
"""

from __future__ import annotations

import json
import pathlib

import pydantic

import imbi_models as m

HERE = pathlib.Path(__file__).parent

T0 = '2026-05-04T12:00:00Z'
T1 = '2026-05-04T13:30:00Z'

VALID: list[tuple[str, str, dict]] = [
    # --- manifests of every kind ---
    ('manifest_minimal', 'PluginManifest', {'slug': 'cfg', 'name': 'Config', 'plugin_type': 'configuration'}),
    ('manifest_configuration_full', 'PluginManifest', {
        'slug': 'aws-ssm', 'name': 'AWS SSM', 'description': 'Parameter Store',
        'plugin_type': 'configuration', 'auth_type': 'aws-iam-ic', 'cacheable': False,
        'options': [
            {'name': 'prefix', 'label': 'Prefix', 'description': 'Path prefix', 'required': True, 'default': '/${org_slug}/${project_slug}'},
            {'name': 'max_results', 'label': 'Max', 'type': 'integer', 'default': 50},
            {'name': 'recursive', 'label': 'Recursive', 'type': 'boolean', 'default': True},
            {'name': 'region', 'label': 'Region', 'choices': ['us-east-1', 'eu-west-1']},
            {'name': 'api_key', 'label': 'Key', 'type': 'secret', 'default': None},
        ],
        'credentials': [
            {'name': 'client_id', 'label': 'Client ID'},
            {'name': 'client_secret', 'label': 'Client secret', 'description': 'From the IdP', 'required': False},
        ],
        'data_types': [{'name': 'String', 'label': 'String'}, {'name': 'SecureString', 'label': 'Secure', 'secret': True}],
    }),
    ('manifest_logs', 'PluginManifest', {
        'slug': 'logzio', 'name': 'Logz.io', 'plugin_type': 'logs', 'supports_histogram': True,
        'credentials': [{'name': 'api_token', 'label': 'API token'}],
        'options': [{'name': 'log_group', 'label': 'Log group', 'default': '${project_slug}-${environment}'}],
    }),
    ('manifest_identity', 'PluginManifest', {
        'slug': 'okta', 'name': 'Okta', 'plugin_type': 'identity', 'auth_type': 'oidc',
        'login_capable': True, 'requires_identity': True, 'default_scopes': ['openid', 'email', 'profile'],
        'widget_text': 'Connect your Okta account',
        'vertex_labels': [{
            'name': 'OktaUser', 'model_ref': 'imbi_okta.models:OktaUser', 'display_name': 'Okta user',
            'description': 'A user in Okta', 'nav_label': 'Okta',
            'indexes': [{'fields': ['subject'], 'unique': True}, {'fields': ['email', 'org']}],
        }],
        'edge_labels': [{'name': 'CONNECTED_AS', 'from_labels': ['User'], 'to_labels': ['OktaUser'], 'properties': {'since': 'datetime'}}],
    }),
    ('manifest_deployment', 'PluginManifest', {
        'slug': 'github-deploy', 'name': 'GitHub', 'plugin_type': 'deployment', 'auth_type': 'oauth2',
        'supports_deployment_sync': True,
        'options': [{'name': 'workflow', 'label': 'Workflow', 'default': 'deploy.yml'}],
        'ops_log_templates': {
            'deploy': {'label': 'Deployed {{version}} to {{environment}}', 'summary': 'by {{actor}}'},
            '': {'label': 'Fallback'},
        },
    }),
    ('manifest_lifecycle', 'PluginManifest', {
        'slug': 'archiver', 'name': 'Archiver', 'plugin_type': 'lifecycle',
        'options': [{'name': 'archive_repo', 'label': 'Archive repo', 'type': 'boolean', 'default': False}],
    }),
    ('manifest_webhook', 'PluginManifest', {
        'slug': 'gateway-actions', 'name': 'Gateway actions', 'plugin_type': 'webhook',
        'credentials': [{'name': 'token', 'label': 'Token', 'required': False}],
    }),
    ('manifest_lax', 'PluginManifest', {
        'slug': 'lax', 'name': 'Lax', 'plugin_type': 'logs', 'api_version': '1', 'cacheable': 'false',
        'login_capable': 1, 'unknown_key': 'ignored',
        'options': [{'name': 'n', 'label': 'N', 'type': 'integer', 'default': 5, 'extra': True}],
    }),
    ('manifest_future_version', 'PluginManifest', {'slug': 'f', 'name': 'F', 'plugin_type': 'webhook', 'api_version': 999.0}),
    # --- context and identity ---
    ('context_minimal', 'PluginContext', {'project_id': 'p1', 'project_slug': 'proj', 'org_slug': 'acme'}),
    ('context_full', 'PluginContext', {
        'project_id': 'p1', 'project_slug': 'proj', 'org_slug': 'acme', 'team_slug': 'core',
        'environment': 'production', 'assignment_options': {'service_slug': 'github', 'n': 3, 'nested': {'a': [1, 'b', None]}},
        'project_links': {'github-repository': 'https://github.com/acme/proj'}, 'project_type_slugs': ['api'],
        'environment_config': {'aws': {'account': '123'}}, 'actor_user_id': 'u1',
        'identity': {'access_token': 'tok', 'expires_at': T1, 'refresh_token': 'r', 'scopes': ['openid'], 'extra': {'aws_session': 'x'}},
    }),
    ('identity_credentials_minimal', 'IdentityCredentials', {'access_token': 'tok'}),
    ('identity_profile', 'IdentityProfile', {
        'subject': 'u-1', 'email': 'a@example.com', 'email_verified': True, 'groups': ['eng'],
        'raw_claims': {'sub': 'u-1', 'amr': ['pwd'], 'exp': 1777896000},
    }),
    ('authorization_request', 'AuthorizationRequest', {
        'authorization_url': 'https://idp/auth', 'state': 's', 'code_verifier': 'v',
        'polling': {'user_code': 'ABCD', 'verification_uri': 'https://idp/device', 'expires_in': '600'},
        'registered_credentials': {'client_id': 'minted'},
    }),
    ('authorization_request_minimal', 'AuthorizationRequest', {'authorization_url': 'https://idp/auth', 'state': 's'}),
    # --- configuration ---
    ('config_value', 'ConfigValue', {'data_type': 'String', 'value': 'v'}),
    ('config_key', 'ConfigKey', {'key': 'db_host', 'data_type': 'String', 'last_modified': T0, 'value': 'dropped'}),
    ('config_key_with_value', 'ConfigKeyWithValue', {'key': 'db_pass', 'data_type': 'SecureString', 'secret': True, 'value': 'shh'}),
    # --- logs ---
    ('log_query', 'LogQuery', {
        'start_time': T0, 'end_time': T1, 'filters': [{'field': 'level', 'op': 'starts_with', 'value': 'err'}],
        'limit': '25', 'cursor': 'c-1', 'levels': ['error', 'warning'],
    }),
    ('log_query_defaults', 'LogQuery', {'start_time': 1777896000, 'end_time': T1}),
    ('log_entry_extras', 'LogEntry', {
        'timestamp': T0, 'message': 'boom', 'level': 'error', 'raw': {'k': 1.5},
        'host': 'web-1', 'trace_id': 'abc',
    }),
    ('log_result', 'LogResult', {
        'entries': [{'timestamp': T0, 'message': 'a'}, {'timestamp': T1, 'message': 'b', 'level': 'info'}],
        'next_cursor': 'n', 'total': 2, 'warnings': ['partial'],
    }),
    ('log_histogram_bucket', 'LogHistogramBucket', {'timestamp': T0, 'count': 7, 'levels': {'error': 2, 'info': '5'}}),
    # --- deployment ---
    ('ref', 'Ref', {'name': 'feature/x', 'kind': 'branch', 'sha': 'abc', 'ahead': 2, 'behind': 0, 'pr_number': 7, 'pr_title': 'X', 'pr_state': 'open'}),
    ('ref_default', 'Ref', {'name': 'main', 'kind': 'default', 'sha': 'abc', 'is_default': True}),
    ('commit_defaults', 'Commit', {'sha': 'abc123', 'short_sha': 'abc', 'message': 'Fix'}),
    ('commit_full', 'Commit', {'sha': 'abc123', 'short_sha': 'abc', 'message': 'Fix', 'author': 'A', 'authored_at': T0,
                                'url': 'https://gh/c/abc', 'ci_status': 'pass', 'pr_number': 3, 'is_head': True}),
    ('compare_result', 'CompareResult', {'base_sha': 'a', 'head_sha': 'b', 'ahead': 2, 'behind': 0,
                                          'commits': [{'sha': '1', 'short_sha': '1', 'message': 'one'}], 'pr_numbers': [7, '8']}),
    ('ref_info', 'RefInfo', {'name': 'v1.0.0', 'sha': 'abc'}),
    ('release_info', 'ReleaseInfo', {'id': '1', 'tag': 'v1.0.0', 'name': 'One', 'html_url': 'https://gh/r/1', 'prerelease': True}),
    ('workflow_file', 'WorkflowFile', {'id': '1', 'path': '.github/workflows/deploy.yml', 'name': 'Deploy'}),
    ('deployment_run', 'DeploymentRun', {'run_id': '42'}),
    ('deployment_run_done', 'DeploymentRun', {'run_id': '42', 'run_url': 'https://ci/42', 'status': 'success', 'started_at': T0, 'completed_at': T1}),
    ('remote_deployment', 'RemoteDeployment', {'environment': 'production', 'sha': 'abc', 'status': 'rolled_back',
                                                'created_at': T0, 'external_run_id': 'run-1', 'deployment_url': 'https://app'}),
    # --- lifecycle ---
    ('lifecycle_result', 'LifecycleResult', {'status': 'ok', 'message': 'archived', 'artifacts': {'repo': 'acme/proj'}}),
    ('lifecycle_result_defaults', 'LifecycleResult', {'status': 'skipped'}),
]

INVALID: list[tuple[str, str, dict]] = [
    ('manifest_missing_plugin_type', 'PluginManifest', {'slug': 's', 'name': 'n'}),
    ('manifest_bad_plugin_type', 'PluginManifest', {'slug': 's', 'name': 'n', 'plugin_type': 'analysis'}),
    ('manifest_bad_auth_type', 'PluginManifest', {'slug': 's', 'name': 'n', 'plugin_type': 'logs', 'auth_type': 'none'}),
    ('manifest_fractional_api_version', 'PluginManifest', {'slug': 's', 'name': 'n', 'plugin_type': 'logs', 'api_version': 1.5}),
    ('manifest_numeric_slug', 'PluginManifest', {'slug': 5, 'name': 'n', 'plugin_type': 'logs'}),
    ('manifest_null_cacheable', 'PluginManifest', {'slug': 's', 'name': 'n', 'plugin_type': 'logs', 'cacheable': None}),
    ('manifest_option_missing_label', 'PluginManifest', {'slug': 's', 'name': 'n', 'plugin_type': 'logs', 'options': [{'name': 'a'}]}),
    ('manifest_option_mapping_type', 'PluginManifest', {'slug': 's', 'name': 'n', 'plugin_type': 'logs', 'options': [{'name': 'a', 'label': 'A', 'type': 'mapping'}]}),
    ('manifest_empty_index', 'PluginManifest', {'slug': 's', 'name': 'n', 'plugin_type': 'logs',
                                                 'vertex_labels': [{'name': 'V', 'model_ref': 'm', 'indexes': [{'fields': []}]}]}),
    ('manifest_blank_index_field', 'PluginManifest', {'slug': 's', 'name': 'n', 'plugin_type': 'logs',
                                                       'vertex_labels': [{'name': 'V', 'model_ref': 'm', 'indexes': [{'fields': ['a', ' ']}]}]}),
    ('manifest_vertex_label_missing_model_ref', 'PluginManifest', {'slug': 's', 'name': 'n', 'plugin_type': 'logs', 'vertex_labels': [{'name': 'V'}]}),
    ('context_missing_org', 'PluginContext', {'project_id': 'p', 'project_slug': 's'}),
    ('log_filter_bad_op', 'LogFilter', {'field': 'f', 'op': 'gt', 'value': 'v'}),
    ('log_query_bad_time', 'LogQuery', {'start_time': 'yesterday', 'end_time': T1}),
    ('ref_bad_kind', 'Ref', {'name': 'x', 'kind': 'pr', 'sha': 'a'}),
    ('commit_bad_ci_status', 'Commit', {'sha': 'a', 'short_sha': 'a', 'message': 'm', 'ci_status': 'green'}),
    ('deployment_run_bad_status', 'DeploymentRun', {'run_id': '1', 'status': 'done'}),
    ('remote_deployment_missing_status', 'RemoteDeployment', {'environment': 'p', 'sha': 'a', 'created_at': T0, 'external_run_id': 'r'}),
    ('lifecycle_bad_status', 'LifecycleResult', {'status': 'done'}),
    ('polling_missing_expires_in', 'PollingDescriptor', {'user_code': 'u', 'verification_uri': 'v'}),
    ('histogram_bucket_fractional_count', 'LogHistogramBucket', {'timestamp': T0, 'count': 2.5}),
]


def main() -> None:
    valid = []
    for name, model, data in VALID:
        value = m.MODELS[model].model_validate(data)
        valid.append({'name': name, 'model': model, 'input': data, 'dump': value.model_dump(mode='json')})
    invalid = []
    for name, model, data in INVALID:
        try:
            m.MODELS[model].model_validate(data)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            invalid.append({'name': name, 'model': model, 'input': data,
                            'loc': '.'.join(str(p) for p in first['loc']), 'type': first['type']})
        else:
            raise SystemExit(f'{name}: pydantic accepted it')
    for filename, rows in (('valid.json', valid), ('invalid.json', invalid)):
        (HERE / filename).write_text(json.dumps(rows, indent=1, ensure_ascii=False) + '\n')
    print(f'pydantic {pydantic.VERSION}: {len(valid)} valid, {len(invalid)} invalid fixtures')


if __name__ == '__main__':
    main()
