"""Python side of the live credential interop tests (internal/creds).

The Go tests run this with $IMBI_TEST_PYTHON against the same Neo4j:

    interop.py write   stdin: {"neo4j": {...}, "key": K, "plugin_id": P,
                                "config": {...}, "client_id": C, "client_secret": S}
                       Python encrypts with Fernet and writes the Plugin node
                       (and a linked ServiceApplication when client_secret is
                       given); prints {"credentials": {k: str(v)}}.
    interop.py read    stdin: {"neo4j": {...}, "key": K, "plugin_id": P}
                       Python reads plugin_configuration and decrypts it the
                       way imbi's TokenEncryption does; prints
                       {"config": {...}, "keys": [...]} (keys in stored order).

Nothing here prints a secret except the values the test itself chose.
"""

import base64
import json
import sys

import neo4j
from cryptography.fernet import Fernet


def driver(conf):
    return neo4j.GraphDatabase.driver(
        conf['url'], auth=(conf['user'], conf['password']))


def python_decrypt(f, token):
    try:
        return f.decrypt(token.encode('ascii')).decode('utf-8')
    except Exception:  # noqa: BLE001 - TokenEncryption returns None
        try:
            inner = base64.urlsafe_b64decode(token.encode('ascii'))
            return f.decrypt(inner).decode('utf-8')
        except Exception:  # noqa: BLE001
            return None


def write(req):
    f = Fernet(req['key'])
    blob = f.encrypt(json.dumps(req['config']).encode()).decode()
    with driver(req['neo4j']) as d:
        d.execute_query(
            'MERGE (p:Plugin {id: $id}) '
            'SET p.plugin_slug = $slug, p.plugin_configuration = $blob',
            id=req['plugin_id'], slug=req.get('plugin_slug', 'interop'),
            blob=blob, database_=req['neo4j']['database'])
        if req.get('client_secret') is not None:
            d.execute_query(
                'MATCH (p:Plugin {id: $id}) '
                'MERGE (p)-[:USES_APPLICATION]->(a:ServiceApplication {slug: $id}) '
                'SET a.client_id = $cid, a.client_secret = $secret',
                id=req['plugin_id'], cid=req.get('client_id'),
                secret=f.encrypt(req['client_secret'].encode()).decode(),
                database_=req['neo4j']['database'])
    creds = {k: str(v) for k, v in req['config'].items() if v is not None}
    return {'credentials': creds}


def read(req):
    f = Fernet(req['key'])
    with driver(req['neo4j']) as d:
        records, _, _ = d.execute_query(
            'MATCH (p:Plugin {id: $id}) RETURN p.plugin_configuration AS creds',
            id=req['plugin_id'], database_=req['neo4j']['database'])
    token = records[0]['creds']
    plain = python_decrypt(f, token)
    if plain is None:
        return {'error': 'decrypted to None'}
    config = json.loads(plain)
    return {'config': config, 'keys': list(config)}


def main():
    req = json.load(sys.stdin)
    out = {'write': write, 'read': read}[sys.argv[1]](req)
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == '__main__':
    main()
