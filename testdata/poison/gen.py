#!/usr/bin/env python3
"""Writes the poison corpus: one file per message body plus corpus.json.

Run from the repo root: python3 testdata/poison/gen.py
The output is deterministic and committed; test/chaos/poison_test.go reads
corpus.json, publishes every case interleaved with good messages to a real
NATS server and checks what the worker did with each.

corpus.json fields per case:
  name      unique case name (also sent as header Imbi-Test-Case)
  file      body file in this directory, or null when "generate" builds it
  generate  {"kind": ..., ...}: bodies too big to commit (see poison_test.go)
  mode      structured | binary | raw (raw = no CloudEvents headers at all)
  subject   publish subject
  headers   extra NATS headers (values may be built by "generate" too)
  expect    the Imbi-Dlq-Reason the worker must dead-letter it with, or
            "ok" for hostile-but-valid input the action must run for once
  id        for "ok" cases: the payload id the action records
  why       one line on what the case probes
"""
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
SUBJ = "imbi.actions.chaos.record"
CT_CE = {"Content-Type": "application/cloudevents+json"}


def data(case_id, handler="chaos#record", config=None, **over):
    d = {
        "rule": {"id": "r-1", "handler": handler,
                 "handler_config": {"label": "poison"} if config is None else config,
                 "ordinal": 0},
        "plugin": {"id": "pl-chaos", "slug": handler.split("#")[0].split(":")[0]},
        "context": {"project_id": "p-1", "project_slug": "checkout", "org_slug": "acme",
                    "team_slug": "payments", "actor_user_id": None,
                    "assignment_options": {"service_slug": "github"}},
        "external_identifier": "acme/checkout",
        "event": {"type": "push", "third_party_service": "github", "attributed_to": "",
                  "metadata": {"webhook_id": "wh-poison",
                               "headers": {"x-github-event": "push", "authorization": "[redacted]"}},
                  "payload": {"id": case_id}},
    }
    d.update(over)
    return d


def event(case_id, **data_kw):
    return {"specversion": "1.0", "id": case_id,
            "source": "/imbi-gateway/webhooks/wh-poison",
            "type": "io.imbi.webhook.action.v1", "datacontenttype": "application/json",
            "time": "2026-11-25T12:00:00Z", "data": data(case_id, **data_kw)}


def without(d, key):
    d = dict(d)
    del d[key]
    return d


cases = []


def add(name, body, expect, why, mode="structured", subject=SUBJ, headers=None,
        generate=None, case_id=None):
    c = {"name": name, "file": None, "generate": generate, "mode": mode, "subject": subject,
         "headers": dict(CT_CE if mode == "structured" else {}, **(headers or {})),
         "expect": expect, "id": case_id, "why": why}
    if body is not None:
        ext = ".json" if isinstance(body, (dict, list)) or body[:1] in (b"{", b"[") else ".bin"
        c["file"] = name + ext
        raw = body if isinstance(body, bytes) else (json.dumps(body, indent=1) + "\n").encode()
        with open(os.path.join(HERE, c["file"]), "wb") as f:
            f.write(raw)
    cases.append(c)


def pid(name):
    return "poison." + name


# --- not a CloudEvent at all -------------------------------------------------
add("invalid-json", b'{"specversion": "1.0", "id": "poison.invalid-json", "data": {"rule": ',
    "invalid_event", "truncated JSON body in structured mode")
add("empty-body", b"", "invalid_event", "zero-byte body with the CloudEvents content type")
add("json-array-body", b"[1, 2, 3]\n", "invalid_event", "a JSON array is not an event")
add("json-null-body", b"null\n", "invalid_event", "JSON null is not an event")
rnd = random.Random(6)
add("binary-garbage", bytes(rnd.getrandbits(8) for _ in range(4096)), "invalid_event",
    "4 KiB of random bytes with no CloudEvents headers", mode="raw")
add("binary-garbage-ce-content-type", bytes(rnd.getrandbits(8) for _ in range(512)),
    "invalid_event", "random bytes claiming application/cloudevents+json")
ev = event(pid("non-utf8-utf16"))
add("non-utf8-utf16", b"\xff\xfe" + json.dumps(ev).encode("utf-16-le"), "invalid_event",
    "the event encoded as UTF-16LE with a BOM (JSON must be UTF-8)")
ev = json.dumps(event(pid("non-utf8-latin1"))).encode()
ev = ev.replace(b'"push"', b'"pu\xe9sh"', 1)  # a lone latin-1 byte inside a string
add("non-utf8-latin1", ev, "invalid_event",
    "valid JSON except one latin-1 byte (0xE9) inside a string value")

# --- CloudEvent attributes ---------------------------------------------------
e = event(pid("wrong-specversion")); e["specversion"] = "2.0"
add("wrong-specversion", e, "invalid_event", "specversion 2.0")
e = event(pid("old-specversion")); e["specversion"] = "0.3"
add("old-specversion", e, "invalid_event", "specversion 0.3: the contract is CloudEvents 1.0 only")
add("missing-id", without(event("x"), "id"), "invalid_event", "no id attribute")
add("empty-id", dict(event(""), id=""), "invalid_event", "id is the empty string")
add("missing-source", without(event(pid("missing-source")), "source"), "invalid_event",
    "no source attribute")
add("missing-type", without(event(pid("missing-type")), "type"), "invalid_event",
    "no type attribute")
add("unknown-type", dict(event(pid("unknown-type")), type="io.imbi.webhook.action.v2"),
    "unsupported_type", "a CloudEvent of another type")
add("other-producer-type", dict(event(pid("other-producer-type")), type="com.example.push"),
    "unsupported_type", "a well-formed CloudEvent from another producer")

# --- data / envelope ---------------------------------------------------------
add("data-not-object-array", dict(event(pid("data-not-object-array")), data=[1, 2]),
    "invalid_event", "data is a JSON array")
add("data-not-object-string", dict(event(pid("data-not-object-string")), data="rule"),
    "invalid_event", "data is a JSON string")
add("data-missing", without(event(pid("data-missing")), "data"), "invalid_event",
    "no data at all")
e = event(pid("missing-rule")); del e["data"]["rule"]
add("missing-rule", e, "invalid_event", "data has no rule")
e = event(pid("missing-context")); del e["data"]["context"]
add("missing-context", e, "invalid_event", "data has no context")
e = event(pid("rule-handler-not-string")); e["data"]["rule"]["handler"] = 42
add("rule-handler-not-string", e, "invalid_event", "rule.handler is a number")

# --- handler -------------------------------------------------------------------
add("bad-handler-case", event(pid("bad-handler-case"), handler="Chaos#Record"),
    "invalid_handler", "upper case handler")
add("bad-handler-separator", event(pid("bad-handler-separator"), handler="chaos/record"),
    "invalid_handler", "no # separator")
add("bad-handler-wildcard", event(pid("bad-handler-wildcard"), handler="chaos#>"),
    "invalid_handler", "a NATS wildcard as the action name")
e = event(pid("handler-subject-mismatch")); e["subject"] = "chaos#fail"
add("handler-subject-mismatch", e, "invalid_handler",
    "CloudEvent subject names another handler than rule.handler")
add("unknown-plugin", event(pid("unknown-plugin"), handler="nope#record"), "unknown_handler",
    "no plugin registered under the slug", subject="imbi.actions.nope.record")
add("unknown-action", event(pid("unknown-action"), handler="chaos#nope"), "unknown_handler",
    "the plugin has no such action", subject="imbi.actions.chaos.nope")

# --- handler_config ------------------------------------------------------------
add("config-missing-required", event(pid("config-missing-required"), config={}),
    "invalid_config", "handler_config lacks the required label")
add("config-wrong-type", event(pid("config-wrong-type"), config={"label": 5}),
    "invalid_config", "label is a number")
add("config-out-of-range", event(pid("config-out-of-range"),
                                 config={"label": "x", "sleep_ms": -1}),
    "invalid_config", "sleep_ms below its minimum")
add("config-non-json-string", event(pid("config-non-json-string"), config="label=x"),
    "invalid_config", "handler_config is a string that is not JSON")
add("config-json-string-invalid", event(pid("config-json-string-invalid"),
                                        config='{"label": ""}'),
    "invalid_config", "a JSON string holding a config that fails the schema")

# --- credentials ---------------------------------------------------------------
add("credentials-missing", event(pid("credentials-missing"), handler="chaos-creds#record"),
    "credentials_missing", "the plugin requires a token and none is stored",
    subject="imbi.actions.chaos-creds.record")

# --- binary mode -----------------------------------------------------------------
BIN = {"ce-specversion": "1.0", "ce-source": "/imbi-gateway/webhooks/wh-poison",
       "ce-type": "io.imbi.webhook.action.v1", "Content-Type": "application/json"}
add("binary-missing-id", data(pid("binary-missing-id")), "invalid_event",
    "binary mode without ce-id", mode="binary", headers=BIN)
add("binary-body-not-json", b"rule=chaos#record\n", "invalid_event",
    "binary mode whose body is not JSON", mode="binary",
    headers=dict(BIN, **{"ce-id": pid("binary-body-not-json")}))
add("binary-unknown-type", data(pid("binary-unknown-type")), "unsupported_type",
    "binary mode with another ce-type", mode="binary",
    headers=dict(BIN, **{"ce-id": pid("binary-unknown-type"), "ce-type": "io.imbi.other"}))

# --- size and depth (bodies generated by the test, see "generate") -----------------
add("huge-payload-invalid-config", None, "invalid_config",
    "a 4 MiB event whose handler_config fails the schema",
    generate={"kind": "large_payload", "bytes": 4 << 20, "config": {}})
add("deeply-nested-payload", None, "invalid_event",
    "event.payload nested 100,000 objects deep",
    generate={"kind": "deep_nesting", "depth": 100000})
add("huge-header-ce-type", data(pid("huge-header-ce-type")), "unsupported_type",
    "binary mode whose ce-type header value is 60 KiB (JetStream refuses headers over 64 KiB)",
    mode="binary",
    headers=dict(BIN, **{"ce-id": pid("huge-header-ce-type")}),
    generate={"kind": "huge_header", "header": "ce-type", "bytes": 60 << 10})

# --- hostile but valid: must complete, once ----------------------------------------
add("ok-huge-payload", None, "ok", "a 4 MiB valid event",
    generate={"kind": "large_payload", "bytes": 4 << 20}, case_id=pid("ok-huge-payload"))
add("ok-nested-500", None, "ok", "event.payload nested 500 objects deep",
    generate={"kind": "deep_nesting", "depth": 500}, case_id=pid("ok-nested-500"))
add("ok-huge-header-junk", event(pid("ok-huge-header-junk")), "ok",
    "a 40 KiB unrelated header and a 16 KiB garbage traceparent",
    generate={"kind": "huge_header", "header": "X-Junk", "bytes": 40 << 10,
              "traceparent_bytes": 16 << 10},
    case_id=pid("ok-huge-header-junk"))
odd = "poison.ok odd/id*with>chars ünïcode"
e = event(odd)
add("ok-odd-ce-id", e, "ok",
    "a CloudEvent id with spaces, NATS wildcards, '/' and non-ASCII (the idempotency key)",
    case_id=odd)
e = event(pid("ok-no-content-type"))
add("ok-no-content-type", e, "ok",
    "structured mode without Content-Type (detected by specversion in the body)",
    mode="raw", case_id=pid("ok-no-content-type"))
add("ok-binary-odd-case", data(pid("ok-binary-odd-case")), "ok",
    "binary mode with mixed-case header names and a percent-encoded ce-source",
    mode="binary",
    headers={"Ce-Specversion": "1.0", "CE-ID": pid("ok-binary-odd-case"),
             "Ce-Source": "%2Fimbi-gateway%2Fwebhooks%2Fwh-poison",
             "ce-Type": "io.imbi.webhook.action.v1", "content-type": "application/json"},
    case_id=pid("ok-binary-odd-case"))
add("ok-legacy-handler", event(pid("ok-legacy-handler"), handler="chaos:record"), "ok",
    "the legacy <slug>:<action> handler form", case_id=pid("ok-legacy-handler"))
add("ok-config-as-json-string", event(pid("ok-config-as-json-string"),
                                      config='{"label": "as stored on WebhookRule"}'),
    "ok", "handler_config as a string holding JSON", case_id=pid("ok-config-as-json-string"))

with open(os.path.join(HERE, "corpus.json"), "w") as f:
    json.dump({"$comment": "Generated by gen.py; see its docstring for the fields.",
               "cases": cases}, f, indent=1, ensure_ascii=False)
    f.write("\n")
print(f"{len(cases)} cases")
