"""Record what imbi-gateway's pydantic config models accept.

Writes, next to this file:
  schemas/<Model>.json  model_json_schema() of each model
  samples.json          candidate handler_config texts with pydantic's verdict
                        (and, when valid, the model_dump(by_alias=True,
                        mode="json") of the result)

The Go test TestConfigsAcceptWhatPydanticAccepts replays samples.json
through the worker's compiled schema + decode and expects the same
verdicts. The models restate the 06-05 (d24b7218) config models of
apps/gateway/src/imbi/gateway/actions.py and imbi-common's JsonPointer
annotated type (d8ab6992) from their documented behaviour: a str or
JsonPointer, parsed by python-jsonpointer, schema
{"type": "string", "format": "json-pointer"}.

Run with the repo venv (scripts/pyenv.sh installs pydantic and
jsonpointer from requirements-dev.txt):

    .venv/bin/python testdata/gateway-actions/gen_pydantic.py

TestPydanticRecordingIsCurrent runs it with --out <tmp> under
scripts/test.sh and compares the output with the committed files.
"""

import argparse
import json
import pathlib
import typing

import jsonpointer
import pydantic
import pydantic_core
from pydantic_core import core_schema

HERE = pathlib.Path(__file__).resolve().parent


class _PointerSchema:
    @classmethod
    def __get_pydantic_core_schema__(cls, _source, _handler):
        return core_schema.no_info_plain_validator_function(
            cls._validate, serialization=core_schema.to_string_ser_schema()
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, _schema, _handler):
        return {'type': 'string', 'format': 'json-pointer'}

    @staticmethod
    def _validate(value):
        if isinstance(value, jsonpointer.JsonPointer):
            return value
        if isinstance(value, str):
            try:
                return jsonpointer.JsonPointer(value)
            except jsonpointer.JsonPointerException as e:
                raise ValueError(str(e)) from e
        raise ValueError(f'Expected a string or JsonPointer, got {type(value)}')


JsonPointer = typing.Annotated[jsonpointer.JsonPointer, _PointerSchema]


class UpdateProjectRule(pydantic.BaseModel):
    path: typing.Annotated[
        JsonPointer,
        pydantic.Field(description='JSON Pointer on the Imbi project to patch.'),
    ]
    from_: typing.Annotated[
        JsonPointer,
        pydantic.Field(
            alias='from',
            description=(
                'JSON Pointer on the event context to read; the webhook '
                'body is under "/payload" (e.g. "/payload/repo/name").'
            ),
        ),
    ]


class UpdateProjectConfig(pydantic.RootModel[list[UpdateProjectRule]]):
    root: list[UpdateProjectRule] = pydantic.Field(default_factory=list)


class CreateReleaseConfig(pydantic.BaseModel):
    title_selector: JsonPointer
    committish_expression: str
    version_expression: str | None = None


class AddDeploymentEventConfig(pydantic.BaseModel):
    environment_selector: JsonPointer
    committish_expression: str
    status_selector: JsonPointer
    version_expression: str | None = None
    note_selector: JsonPointer | None = None
    external_run_id_selector: JsonPointer | None = None


class IngestSbomConfig(pydantic.BaseModel):
    version_expression: str
    sbom_selector: JsonPointer = pydantic.Field(
        default_factory=lambda: jsonpointer.JsonPointer('/payload'),
        description=(
            'JSON Pointer at the CycloneDX document inside the event '
            'context. Defaults to "/payload" (the entire webhook body).'
        ),
    )
    committish_expression: str | None = pydantic.Field(default=None)
    title_selector: JsonPointer | None = pydantic.Field(default=None)


MODELS = {
    m.__name__: m
    for m in (
        UpdateProjectConfig,
        CreateReleaseConfig,
        AddDeploymentEventConfig,
        IngestSbomConfig,
    )
}

# Candidate handler_config texts. Each is a JSON document as the rule
# stores it (the worker's SDK additionally unwraps a JSON string holding
# JSON and treats null as empty; those envelope conveniences are not
# pydantic's and are left out here).
CR = '"committish_expression": "substring(payload.deployment.sha, 0, 7)"'
DE = (
    '"environment_selector": "/payload/deployment_status/environment",'
    ' "committish_expression": "substring(payload.deployment.sha, 0, 7)",'
    ' "status_selector": "/payload/deployment_status/state"'
)
CANDIDATES: dict[str, list[str]] = {
    'UpdateProjectConfig': [
        '[]',
        '[{"path": "/name", "from": "/payload/repo/name"}]',
        '[{"path": "/x", "from": "/payload/a"}, {"path": "/y", "from": "/payload/b"}]',
        '[{"path": "", "from": ""}]',
        '[{"path": "/a~0b~1c", "from": "/payload/~0"}]',
        '[{"path": "/a", "from": "/b", "extra": 1}]',
        '[{"path": "/a", "from": "/b", "From": 7, "PATH": null}]',
        '[{"path": "/name", "from_": "/payload/repo/name"}]',
        '[{"path": "name", "from": "/payload/x"}]',
        '[{"path": "/a~", "from": "/b"}]',
        '[{"path": "/a", "from": "/b~2"}]',
        '[{"path": "/a", "from": 5}]',
        '[{"path": "/a", "from": null}]',
        '[{"path": "/a"}]',
        '[null]',
        '[1]',
        '[[]]',
        '{}',
        '{"path": "/a", "from": "/b"}',
        '"[]"',
        '5',
    ],
    'CreateReleaseConfig': [
        '{"title_selector": "/payload/deployment/ref", ' + CR + ', "version_expression": "payload.deployment.ref"}',
        '{"title_selector": "/payload/deployment/ref", ' + CR + '}',
        '{"title_selector": "/payload/deployment/ref", ' + CR + ', "version_expression": null}',
        '{"title_selector": "", ' + CR + '}',
        '{"title_selector": "/", "committish_expression": ""}',
        '{"title_selector": "/payload/deployment/ref", "version_expression": "payload.deployment.ref"}',
        '{' + CR + '}',
        '{}',
        '{"title_selector": "payload/deployment/ref", ' + CR + '}',
        '{"title_selector": "/payload~", ' + CR + '}',
        '{"title_selector": "/payload~9", ' + CR + '}',
        '{"title_selector": 5, ' + CR + '}',
        '{"title_selector": null, ' + CR + '}',
        '{"title_selector": "/a", "committish_expression": 7}',
        '{"title_selector": "/a", "committish_expression": null}',
        '{"title_selector": "/a", "committish_expression": true}',
        '{"title_selector": "/a", ' + CR + ', "version_expression": 1.5}',
        '{"title_selector": "/a", ' + CR + ', "version_expression": ["x"]}',
        '{"title_selector": "/a", ' + CR + ', "unknown": {"deep": [1, 2]}}',
        '{"Title_Selector": "/a", ' + CR + '}',
        '{"title_selector": "/a", ' + CR + ', "TITLE_SELECTOR": 5, "Version_Expression": 9}',
        '{"title_selector": "bad", "title_selector": "/ok", ' + CR + '}',
        '{"title_selector": "/ok", "title_selector": "bad", ' + CR + '}',
        '{"title_selector": "/caf\\u00e9/\\u0000", "committish_expression": "\\ud83d\\ude00"}',
        '[]',
        '"x"',
        'null',
    ],
    'AddDeploymentEventConfig': [
        '{' + DE + '}',
        '{' + DE + ', "version_expression": "payload.deployment.ref"}',
        '{' + DE + ', "version_expression": null, "note_selector": null, "external_run_id_selector": null}',
        '{' + DE + ', "note_selector": "/payload/deployment/url"}',
        '{' + DE + ', "external_run_id_selector": "/payload/workflow_run/id"}',
        '{' + DE + ', "note_selector": "payload/deployment/url"}',
        '{' + DE + ', "note_selector": "/x~"}',
        '{' + DE + ', "external_run_id_selector": 12}',
        '{' + DE + ', "version_expression": false}',
        '{"environment_selector": "/payload/deployment_status/environment", "version_expression": "payload.deployment.ref", "status_selector": "/payload/deployment_status/state"}',
        '{"environment_selector": "/e", "committish_expression": "c"}',
        '{"committish_expression": "c", "status_selector": "/s"}',
        '{"environment_selector": "e", "committish_expression": "c", "status_selector": "/s"}',
        '{"environment_selector": "/e", "committish_expression": "c", "status_selector": "s"}',
        '{"environment_selector": "/e", "committish_expression": "c", "status_selector": "/s", "Note_Selector": "bad"}',
        '{}',
        '[]',
    ],
    'IngestSbomConfig': [
        '{"version_expression": "payload.version"}',
        '{"version_expression": "payload.version", "sbom_selector": "/payload/sbom"}',
        '{"version_expression": "payload.version", "sbom_selector": ""}',
        '{"version_expression": "payload.version", "sbom_selector": null}',
        '{"version_expression": "payload.version", "sbom_selector": "sbom"}',
        '{"version_expression": "payload.version", "committish_expression": "payload.sha"}',
        '{"version_expression": "payload.version", "committish_expression": null, "title_selector": null}',
        '{"version_expression": "payload.version", "title_selector": "/payload/title"}',
        '{"version_expression": "payload.version", "title_selector": "title"}',
        '{"version_expression": "payload.version", "title_selector": "/t~"}',
        '{"version_expression": "payload.version", "committish_expression": 1}',
        '{"version_expression": null}',
        '{"version_expression": 3}',
        '{"sbom_selector": "/payload/sbom"}',
        '{}',
        '{"Version_Expression": "payload.version"}',
        '[]',
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=pathlib.Path, default=HERE,
                        help='directory to write into (default: next to this file)')
    out_dir = parser.parse_args().out
    schemas = out_dir / 'schemas'
    schemas.mkdir(parents=True, exist_ok=True)
    for name, model in MODELS.items():
        (schemas / f'{name}.json').write_text(
            json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + '\n'
        )
    samples = []
    for name, texts in CANDIDATES.items():
        model = MODELS[name]
        for text in texts:
            sample: dict[str, object] = {'model': name, 'input': text}
            try:
                value = model.model_validate_json(text)
            except pydantic.ValidationError as e:
                sample['valid'] = False
                sample['error'] = e.errors(include_url=False, include_input=False)[0]['msg']
            else:
                sample['valid'] = True
                sample['dump'] = value.model_dump(by_alias=True, mode='json')
            samples.append(sample)
    out = {
        'generator': 'testdata/gateway-actions/gen_pydantic.py',
        'pydantic': pydantic.VERSION,
        'pydantic_core': pydantic_core.__version__,
        'jsonpointer': jsonpointer.__version__,
        'samples': samples,
    }
    (out_dir / 'samples.json').write_text(json.dumps(out, indent=1, ensure_ascii=False) + '\n')


if __name__ == '__main__':
    main()
