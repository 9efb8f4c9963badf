"""Generate testdata/creds/fixtures.json with Python's own Fernet and str().

Run from the repository root with the repo venv:

    .venv/bin/python testdata/creds/gen_fixtures.py > testdata/creds/fixtures.json

Every token here is made by `cryptography.fernet.Fernet`, and every expected
value by Python itself (`str(v)`, truthiness, `json.loads`), so the Go tests
that read these fixtures check the Go code against Python, not against a Go
author's idea of Python. The keys are test-only keys, used nowhere else.
"""

import base64
import json
import sys

from cryptography.fernet import Fernet

KEY = 'mH9yAZe-RIQumxh86VN48bYqMDLtHetunAhX2943Rm8='
OTHER_KEY = '05kGD9KQFzVI2HZWXCWrP2swjwgefzPy7jHSCJLU620='

fernet = Fernet(KEY)
other = Fernet(OTHER_KEY)


def python_decrypt(token):
    """imbi's TokenEncryption.decrypt: None on any token problem."""
    try:
        return fernet.decrypt(token.encode('ascii')).decode('utf-8')
    except Exception:  # noqa: BLE001 - mirrors the None branch
        try:
            inner = base64.urlsafe_b64decode(token.encode('ascii'))
            return fernet.decrypt(inner).decode('utf-8')
        except Exception:  # noqa: BLE001
            return None


def config_expectations(plain):
    """What get_plugin_credentials returns with no required fields, and the
    keys get_plugin_configuration_keys reports; None when Python's lenient
    reader would see no object."""
    if plain is None or plain == '':
        return {}, []
    try:
        data = json.loads(plain)
    except ValueError:
        return {}, []
    if not isinstance(data, dict):
        return None, None
    creds = {k: str(v) for k, v in data.items() if v is not None}
    keys = [k for k, v in data.items() if v]
    return creds, keys


CONFIGS = {
    'basic': {'token': 'secret-value'},
    'python_types': {
        'token': 't',
        'flag': True,
        'off': False,
        'zero': 0,
        'neg_zero_float': -0.0,
        'int': 42,
        'big_int': 123456789012345678901234567890,
        'float': 1.5,
        'whole_float': 100.0,
        'million': 1e6,
        'e16': 1e16,
        'e20': 1e20,
        'small': 1e-7,
        'tiny': 0.0001,
        'third': 1 / 3,
        'obj': {'x': 1, 'y': [1, "a'b", None, True]},
        'empty_obj': {},
        'list': [1],
        'empty_list': [],
        'none': None,
        'empty': '',
        'dq': 'say "hi"',
        'both_quotes': 'it\'s "x"',
        'nested_quotes': ["it's", 'plain', 'tab\there', 'nl\nx', 'back\\slash'],
        'unicode': 'café ☃ 𝄞',
        'unicode_in_list': ['café', '\u200b', '\x7f', '\xa0', '\u00ad'],
    },
    'non_ascii': {'token': 'jeton-€-✓-日本', 'ключ': 'значение'},
    'order': {'zeta': 'z', 'alpha': 'a', 'mid': 'm'},
}


def case(name, token, **extra):
    plain = python_decrypt(token)
    creds, keys = config_expectations(plain)
    out = {
        'name': name,
        'token': token,
        'decrypt_ok': plain is not None,
        'plaintext': plain,
        'credentials': creds,
        'keys': keys,
    }
    out.update(extra)
    return out


def main():
    cases = []
    for name, cfg in CONFIGS.items():
        cases.append(case('config_' + name, fernet.encrypt(json.dumps(cfg).encode()).decode()))
    basic = json.dumps(CONFIGS['basic']).encode()
    # A token minted in 2001: Fernet without a TTL must still open it.
    cases.append(case('old_token_2001', fernet.encrypt_at_time(basic, 1000000000).decode()))
    # Legacy: the token base64-encoded a second time.
    legacy = base64.urlsafe_b64encode(fernet.encrypt(basic)).decode()
    cases.append(case('legacy_double_base64', legacy))
    cases.append(case('wrong_key', other.encrypt(basic).decode()))
    good = fernet.encrypt(basic).decode()
    mid = len(good) // 2
    corrupt = good[:mid] + ('A' if good[mid] != 'A' else 'B') + good[mid + 1:]
    cases.append(case('corrupt_token', corrupt))
    cases.append(case('truncated_token', good[:-10]))
    cases.append(case('not_a_token', 'garbage-not-fernet'))
    cases.append(case('non_ascii_token', good[:20] + 'é' + good[21:]))
    cases.append(case('list_json', fernet.encrypt(b'[1, 2]').decode(), strict_error='must be a JSON object'))
    cases.append(case('not_json', fernet.encrypt(b'not-json').decode(), strict_error='is not valid JSON'))
    cases.append(case('empty_plaintext', fernet.encrypt(b'').decode(), strict_error='is not valid JSON'))
    cases.append(case('invalid_utf8_plaintext', fernet.encrypt(b'\xff\xfe').decode(), strict_error='decrypted to None'))
    for c in cases:
        if c['name'] in ('wrong_key', 'corrupt_token', 'truncated_token', 'not_a_token', 'non_ascii_token'):
            c['strict_error'] = 'decrypted to None'
    secrets = []
    for name, secret in [('ascii', 'shh'), ('unicode', 'sëcret-✓'), ('empty', '')]:
        secrets.append({
            'name': name,
            'token': fernet.encrypt(secret.encode()).decode(),
            'plaintext': secret,
        })
    json.dump({
        'key': KEY,
        'other_key': OTHER_KEY,
        'configs': cases,
        'client_secrets': secrets,
    }, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
