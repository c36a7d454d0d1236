"""Schemathesis hooks for the Developer Center contract (docs/devcenter-api/openapi.yaml).

Schemathesis generates the bodies, valid and invalid; this file adds what a schema cannot say:
- every request is signed with the TSP key, over the exact bytes sent, at the current time;
- in the fuzzing phase some requests are tampered with on purpose (bad, missing or misplaced
  signatures, stale or future Request-Time, an unknown Client-Id, malformed JSON, an oversized
  body, an unknown field), each with the answer the contract prescribes;
- two checks run on every answer: it is signed by the Developer Center key (failures too), and
  its result is the one the input calls for.

Settings come from the environment (hack/conformance sets them):
  ACQP_CONFORMANCE_CLIENT_ID              the application's Client-Id
  ACQP_CONFORMANCE_PRIVATE_KEY            PEM file of the TSP private key that signs requests
  ACQP_CONFORMANCE_DEVCENTER_PUBLIC_KEY   PEM file of the key every answer must verify with
  ACQP_CONFORMANCE_SUMMARY                optional: where to write a JSON count of what was sent
                                          and answered, so a test can tell the run was thorough
"""

import atexit
import base64
import collections
import datetime
import json
import os
import urllib.parse

import hypothesis.strategies as st
import requests
import schemathesis
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from schemathesis.core.parameters import ParameterLocation

CLIENT_ID = os.environ["ACQP_CONFORMANCE_CLIENT_ID"]
with open(os.environ["ACQP_CONFORMANCE_PRIVATE_KEY"], "rb") as pem:
    TSP_KEY = serialization.load_pem_private_key(pem.read(), password=None)
with open(os.environ["ACQP_CONFORMANCE_DEVCENTER_PUBLIC_KEY"], "rb") as pem:
    DEVCENTER_KEY = serialization.load_pem_public_key(pem.read())

# The contract's bounds (openapi.yaml): request bodies and clock skew.
MAX_BODY_BYTES = 64 * 1024
MAX_SKEW_SECONDS = 300

# Carries the tampering chosen for a case from generation to sending; removed before sending.
TAMPER_HEADER = "X-Conformance-Tamper"

# Tampering → the (HTTP status, resultCode) the contract prescribes, whatever the body.
AUTH_FAILURES = {
    "bad-signature": (200, "INVALID_SIGNATURE"),
    "signed-other-path": (200, "INVALID_SIGNATURE"),
    "body-changed-after-signing": (200, "INVALID_SIGNATURE"),
    "stale-request-time": (200, "INVALID_SIGNATURE"),
    "future-request-time": (200, "INVALID_SIGNATURE"),
    "unparsable-request-time": (200, "INVALID_SIGNATURE"),
    "no-signature": (200, "INVALID_SIGNATURE"),
    "no-request-time": (200, "INVALID_SIGNATURE"),
    "no-client-id": (200, "INVALID_SIGNATURE"),
    "unknown-client-id": (200, "INVALID_CLIENT"),
    "oversized-body": (413, "PARAM_ILLEGAL"),
}
# Tampering that keeps the signature valid and breaks the body: PARAM_ILLEGAL.
BODY_FAILURES = {"malformed-json", "not-an-object"}
# Tampering the contract says to ignore: the answer must be what the untampered body gets.
HARMLESS = {"none", "unknown-field"}
# "none" first and most often: Hypothesis shrinks toward the first element.
TAMPERS = ["none"] * 8 + ["unknown-field"] * 2 + sorted(BODY_FAILURES) + sorted(AUTH_FAILURES)

# (operation, what was sent) → resultCode → count.
SUMMARY = collections.defaultdict(collections.Counter)


def _write_summary():
    path = os.environ.get("ACQP_CONFORMANCE_SUMMARY")
    if path:
        with open(path, "w") as out:
            json.dump({" ".join(k): dict(v) for k, v in SUMMARY.items()}, out, indent=1, sort_keys=True)


atexit.register(_write_summary)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).astimezone()


def _header_time(moment):
    """ISO 8601, whole seconds, numeric offset: what the operator sends."""
    return moment.replace(microsecond=0).isoformat()


def sign(path, client_id, time, body):
    """The `Signature` header value over `POST <path>\\n<Client-Id>.<time>.<body>`."""
    content = f"POST {path}\n{client_id}.{time}.".encode() + body
    raw = TSP_KEY.sign(content, padding.PKCS1v15(), hashes.SHA256())
    encoded = urllib.parse.quote(base64.b64encode(raw).decode(), safe="")
    return f"algorithm=RSA256,keyVersion=1,signature={encoded}"


def verify(path, client_id, time, body, header_value):
    """Checks a `Signature` header value with the Developer Center key; raises AssertionError."""
    fields = {}
    for field in header_value.split(","):
        name, sep, value = field.partition("=")
        assert sep, f"Signature field {field!r} is not name=value"
        fields[name.strip()] = value.strip()
    assert fields.get("algorithm") == "RSA256", f"Signature algorithm is {fields.get('algorithm')!r}, not RSA256"
    assert "signature" in fields, "the Signature header has no signature field"
    raw = base64.b64decode(urllib.parse.unquote(fields["signature"]), validate=True)
    content = f"POST {path}\n{client_id}.{time}.".encode() + body
    try:
        DEVCENTER_KEY.verify(raw, content, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise AssertionError(
            f"the answer's signature does not verify with the Developer Center key "
            f"(path {path!r}, Client-Id {client_id!r}, Response-Time {time!r})"
        ) from None


def _tamper_of(case):
    return (case.headers or {}).get(TAMPER_HEADER, "none")


def _negative(case, location):
    meta = case.meta
    return meta is not None and meta.is_negative_at(location)


def _headers_negative(case):
    return _negative(case, ParameterLocation.HEADER)


def _body_negative(case):
    return _negative(case, ParameterLocation.BODY)


@schemathesis.hook
def before_load_schema(context, raw_schema):
    """Drops the signing headers from what Schemathesis generates: no generated value can carry a
    valid signature, so the signing step sets them, and the tamperings below break them in each
    way the contract names. Left to Schemathesis, almost every negative case would be a header
    one, and invalid bodies would go untested."""
    for methods in raw_schema.get("paths", {}).values():
        for operation in methods.values():
            if isinstance(operation, dict):
                operation.pop("parameters", None)


@schemathesis.hook
def flatmap_case(context, case):
    """Picks a tampering for each fuzzed case; the signing step applies it."""

    def with_tamper(tamper):
        case.headers = {**(case.headers or {}), TAMPER_HEADER: tamper}
        return case

    return st.sampled_from(TAMPERS).map(with_tamper)


class SignRequest(requests.auth.AuthBase):
    """Signs the prepared request (its final bytes), applying the case's tampering."""

    def __init__(self, case):
        self.tamper = _tamper_of(case)
        # Schemathesis made these headers invalid on purpose: send them as generated.
        self.keep_headers = _headers_negative(case)

    def __call__(self, request):
        request.headers.pop(TAMPER_HEADER, None)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        tamper = self.tamper
        if tamper == "malformed-json":
            body = body[: max(len(body) - 1, 0)] + b',"'
        elif tamper == "not-an-object":
            body = b"[" + body + b"]"
        elif tamper == "oversized-body":
            body = body + b" " * (MAX_BODY_BYTES + 1)
        elif tamper == "unknown-field" and body.lstrip().startswith(b"{"):
            value = json.loads(body)
            if isinstance(value, dict):
                value["conformanceUnknownField"] = {"ignored": [1, "two"]}
                body = json.dumps(value).encode()
        request.body = body
        request.headers["Content-Length"] = str(len(body))
        if self.keep_headers:
            return request
        path = urllib.parse.urlsplit(request.url).path
        client_id = "SANDBOX_NOBODY_KNOWS_ME" if tamper == "unknown-client-id" else CLIENT_ID
        moment = _now()
        if tamper == "stale-request-time":
            moment -= datetime.timedelta(seconds=MAX_SKEW_SECONDS + 60)
        elif tamper == "future-request-time":
            moment += datetime.timedelta(seconds=MAX_SKEW_SECONDS + 60)
        time = "yesterday at noon" if tamper == "unparsable-request-time" else _header_time(moment)
        signed_path = path + "/other" if tamper == "signed-other-path" else path
        signature = sign(signed_path, client_id, time, body)
        if tamper == "bad-signature":
            # Flip one Base64 character of the signature itself.
            head, _, value = signature.rpartition("=")
            signature = f"{head}={'B' if value[0] == 'A' else 'A'}{value[1:]}"
        if tamper == "body-changed-after-signing":
            request.body = body + b" "
            request.headers["Content-Length"] = str(len(request.body))
        request.headers["Content-Type"] = "application/json; charset=UTF-8"
        request.headers["Client-Id"] = client_id
        request.headers["Request-Time"] = time
        request.headers["Signature"] = signature
        for missing, name in [
            ("no-signature", "Signature"),
            ("no-request-time", "Request-Time"),
            ("no-client-id", "Client-Id"),
        ]:
            if tamper == missing:
                del request.headers[name]
        return request


@schemathesis.hook
def before_call(context, case, kwargs):
    kwargs["auth"] = SignRequest(case)


def _header(response, name):
    values = response.headers.get(name.lower())
    assert values, f"the answer (HTTP {response.status_code}) has no {name} header"
    return values[0]


def _contract_call(response):
    """Whether the request was a contract call: the contract defines POST only, and answers to
    other methods (405, unsigned) are Schemathesis' own `unsupported_method` check's business."""
    return response.request.method == "POST"


@schemathesis.check
def answers_are_signed_by_the_developer_center(ctx, response, case):
    """Every answer, whatever the input, carries a fresh signature by the Developer Center."""
    if not _contract_call(response):
        return
    sent_client_id = response.request.headers.get("Client-Id", "")
    client_id = _header(response, "Client-Id")
    time = _header(response, "Response-Time")
    signature = _header(response, "Signature")
    path = urllib.parse.urlsplit(response.request.url).path
    verify(path, client_id, time, response.content, signature)
    well_formed = 0 < len(sent_client_id) <= 64 and all(c.isascii() and (c.isalnum() or c in "_.-") for c in sent_client_id)
    expected = sent_client_id if well_formed else ""
    assert client_id == expected, f"the answer's Client-Id is {client_id!r}, expected the request's {expected!r}"
    sent = datetime.datetime.fromisoformat(time.replace("Z", "+00:00"))
    skew = abs((_now() - sent).total_seconds())
    assert skew <= MAX_SKEW_SECONDS, f"Response-Time {time} is {skew:.0f}s away from now"


def _expected(case):
    """(HTTP statuses, result codes) the contract prescribes for this input; None: any it documents."""
    tamper = _tamper_of(case)
    if tamper in AUTH_FAILURES:
        status, code = AUTH_FAILURES[tamper]
        if tamper == "oversized-body" or not _headers_negative(case):
            return {status}, {code}
    if _headers_negative(case):
        return {200}, {"INVALID_SIGNATURE", "INVALID_CLIENT"}
    if tamper in BODY_FAILURES or _body_negative(case):
        return {200}, {"PARAM_ILLEGAL"}
    return None


@schemathesis.check
def result_is_the_one_the_input_calls_for(ctx, response, case):
    """Valid input is never refused as malformed or unauthentic; invalid input always is, with
    the code the contract gives that fault."""
    if not _contract_call(response):
        return
    try:
        result = json.loads(response.content)["result"]
        code, status = result["resultCode"], result["resultStatus"]
    except (ValueError, KeyError, TypeError):
        raise AssertionError(f"HTTP {response.status_code}: the body has no result: {response.content[:200]!r}") from None
    mode = "negative-headers" if _headers_negative(case) else "negative-body" if _body_negative(case) else "valid"
    SUMMARY[(case.operation.path, _tamper_of(case), mode)][code] += 1
    expected = _expected(case)
    if expected is None:
        refused = {"PARAM_ILLEGAL", "INVALID_SIGNATURE", "INVALID_CLIENT"}
        assert code not in refused, (
            f"a valid, correctly signed request was refused with {code}/{status}: {result.get('resultMessage')}"
        )
        return
    statuses, codes = expected
    assert response.status_code in statuses and code in codes, (
        f"expected HTTP {sorted(statuses)} with {sorted(codes)} for this input "
        f"(tampering {_tamper_of(case)!r}, {mode}), got HTTP {response.status_code} with {code}/{status}: "
        f"{result.get('resultMessage')}"
    )
