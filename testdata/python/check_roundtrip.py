"""Validate the Go SDK's JSON encodings with the pydantic models.

    python testdata/python/check_roundtrip.py GO_OUTPUT.json

GO_OUTPUT.json is written by the Go test TestPythonValidatesGoEncoding:
[{name, model, json}] where `json` is the text Go's MarshalJSON produced.
For every entry pydantic must (1) accept the text, (2) dump exactly the same
document back (every field present, same top-level key order), and (3) when
`name` is a fixture of valid.json, get a value equal to the fixture's.
Prints one line per failure and exits 1 if there was any.
"""

from __future__ import annotations

import json
import pathlib
import sys

import pydantic

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import imbi_models as m  # noqa: E402


def main(path: str) -> int:
    fixtures = {f['name']: f for f in json.loads((pathlib.Path(__file__).parent / 'valid.json').read_text())}
    failures = []
    rows = json.loads(pathlib.Path(path).read_text())
    for row in rows:
        name, model = row['name'], m.MODELS[row['model']]
        try:
            value = model.model_validate_json(row['json'])
        except pydantic.ValidationError as exc:
            failures.append(f'{name}: pydantic rejects Go encoding: {exc}')
            continue
        go_doc = json.loads(row['json'])
        dump = value.model_dump(mode='json')
        if go_doc != dump:
            failures.append(f'{name}: Go encoding {go_doc!r} != pydantic dump {dump!r}')
        elif list(go_doc) != list(dump):
            failures.append(f'{name}: key order {list(go_doc)} != {list(dump)}')
        if name in fixtures and value != model.model_validate(fixtures[name]['input']):
            failures.append(f'{name}: value differs from the Python fixture')
    for f in failures:
        print(f)
    print(f'checked {len(rows)} Go encodings with pydantic {pydantic.VERSION}: {len(failures)} failures')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
