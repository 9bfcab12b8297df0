"""Schemathesis hooks of `make fuzz-api` (scripts/fuzz-api.sh).

1. `filter_failure` drops a `positive_data_acceptance` failure (ST202) only
   when the refusal is one docs/spec/api.md mandates for input that no JSON Schema can
   tell apart from acceptable input: it depends on the clock, on the
   database, or on a secret; and one inferred `ensure_resource_availability`
   failure (ST302) that is docs/spec/api.md's contract too (see below). Every other
   failure, and every other check on the same response, stays. The run's
   summary counts what was dropped.
2. `filter_case` keeps the fuzzer from locking itself out: no admin
   deactivating or demoting the harness's own accounts (PATCH
   /api/v1/users/{id} with their ids), no logins to them with generated
   passwords. The operations are still fuzzed: PATCH on the account kept for
   it (`target`), on accounts the fuzzer registers and on unknown ids; login
   on every other address, and with the right password in the credentials
   run. It also leaves out `GET /ws` with a ticket the server issued: that
   opens a WebSocket (101), which an HTTP fuzzer cannot carry on; /ws is
   fuzzed with every other ticket and handshake.
3. In the `credentials` run (FUZZ_CREDENTIALS_EMAIL set), the schema-valid
   cases of POST /auth/login and POST /auth/password/change carry the
   account's real e-mail address and current password, so their successful
   answers are checked too; the password is followed as the fuzzer changes
   it.
"""

from __future__ import annotations

import json
import os
import re
import threading

import schemathesis

POSITIVE_DATA_ACCEPTANCE = "ST202"
RESOURCE_AVAILABILITY = "ST302"

# Refusals of schema-valid input that docs/spec/api.md mandates, by operation and
# `error_code`.
SPEC_REFUSALS = {
    # A reset or verification token is a secret the server handed out by
    # e-mail; any other string is 400 invalid_token.
    "POST /api/v1/auth/verify-email": {"invalid_token"},
    "POST /api/v1/auth/password/reset": {"invalid_token"},
    # Whether a bid is high enough, and a poison bid's budget and step, depend
    # on the item's current price and increment (422 bid_too_low,
    # invalid_poison).
    "POST /api/v1/items/{id}/bid": {"bid_too_low", "invalid_poison"},
    # After 5 wrong passwords in a row an account is locked (423
    # account_locked): the guessing run gets there on purpose.
    "POST /api/v1/auth/login": {"account_locked"},
    "POST /api/v1/auth/password/change": {"account_locked"},
    # The same lock guards the second factor's settings (the password or a
    # code proves them) and the code that completes a login.
    "POST /api/v1/auth/mfa/totp": {"account_locked"},
    "DELETE /api/v1/auth/mfa/totp": {"account_locked"},
    "POST /api/v1/auth/mfa": {"account_locked"},
    # Whether bytes are an image is in the bytes (422 invalid_image, the spec's
    # answer to anything that does not decode); the limit of eight and the
    # item's state are the database's.
    "POST /api/v1/items/{id}/photos": {"invalid_image", "too_many_photos", "auction_closed"},
}
# A cursor is opaque and authenticated: one the server did not hand out is
# 400 invalid_cursor, on every list.
CURSOR_REFUSAL = "invalid_cursor"
# A 422 validation_failed is accepted when each of its errors is one of
# these, by operation: (field, start of the message).
RULE_ERRORS = {
    # `close_at` must lie in the future, and at most 365 days ahead: a rule
    # about the clock. (PATCH /items/{id}, once served: also "never earlier
    # than it was", a rule about the item.)
    "POST /api/v1/items": {("close_at", "must be in the future"), ("close_at", "must be at most")},
    "PATCH /api/v1/items/{id}": {("close_at", "must be in the future"), ("close_at", "must be at most")},
    # New passwords that are common or breached, or built from the account's
    # own details (its e-mail address, its display name), are refused: a
    # list and the other fields decide, not the password's shape.
    "POST /api/v1/auth/register": {("password", "is too common")},
    "POST /api/v1/auth/password/change": {("new_password", "is too common")},
    "POST /api/v1/auth/password/reset": {("new_password", "is too common")},
    # A form without its one `photo` file (the spec's 422), and an order that
    # is not exactly the item's photos: the database knows which they are.
    "POST /api/v1/items/{id}/photos": {
        ("photo", "the form cannot be read"),
        ("photo", "send one file in the form field"),
    },
    "PUT /api/v1/items/{id}/photos/order": {("ids", "must list each of the item's photos")},
}


def _problem(response) -> dict:
    try:
        body = json.loads(response.content or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    if failure.code == RESOURCE_AVAILABILITY:
        # Schemathesis infers from the shared `{id}` that POST /items creates
        # what GET /items/{id}/bid reads; that is the caller's own bid on the
        # item, 404 bid_not_found until there is one (docs/spec/api.md).
        return not (
            case.operation.label == "GET /api/v1/items/{id}/bid"
            and _problem(response).get("error_code") == "bid_not_found"
        )
    if failure.code != POSITIVE_DATA_ACCEPTANCE:
        return True
    label = case.operation.label
    problem = _problem(response)
    code = problem.get("error_code")
    if response.status_code == 400 and code == CURSOR_REFUSAL and (case.query or {}).get("cursor") is not None:
        return False
    if code in SPEC_REFUSALS.get(label, ()):
        return False
    if response.status_code == 422 and code == "validation_failed" and label in RULE_ERRORS:
        errors = [error for error in problem.get("errors") or [] if isinstance(error, dict)]
        allowed = RULE_ERRORS[label]
        if errors and all(
            any(
                error.get("field") == field and str(error.get("message", "")).startswith(message)
                for field, message in allowed
            )
            for error in errors
        ):
            return False
    return True


# The harness's own accounts (comma-separated ids and e-mail addresses).
PROTECTED_IDS = {value for value in os.environ.get("FUZZ_PROTECTED_IDS", "").split(",") if value}
PROTECTED_EMAILS = {value for value in os.environ.get("FUZZ_PROTECTED_EMAILS", "").split(",") if value}
# The credentials run's account, whose real password hook 3 supplies.
CREDENTIALS_EMAIL = os.environ.get("FUZZ_CREDENTIALS_EMAIL")
LOGIN = "POST /api/v1/auth/login"
CHANGE = "POST /api/v1/auth/password/change"


# A ticket the server hands out: 43 characters of unpadded URL-safe base64.
ISSUED_TICKET = re.compile(r"^[A-Za-z0-9_-]{43}$")


@schemathesis.hook
def filter_case(context, case) -> bool:
    label = case.operation.label
    if label == "GET /ws":
        # With a real ticket (schemathesis reuses the ones POST /ws-ticket
        # answered) and the handshake headers, the documented answer is 101
        # and the connection speaks WebSocket from then on: an HTTP client
        # cannot judge it, and reads the socket's frames as its next
        # answer. Every other /ws case runs: no ticket, garbage tickets,
        # used ones, broken handshakes.
        ticket = (case.query or {}).get("ticket")
        return not (isinstance(ticket, str) and ISSUED_TICKET.match(ticket))
    if label == "PATCH /api/v1/users/{id}":
        return str((case.path_parameters or {}).get("id")) not in PROTECTED_IDS
    if label == LOGIN and isinstance(case.body, dict) and isinstance(case.body.get("email"), str):
        # Schemathesis reuses values from earlier answers (GET /users/me,
        # GET /users), so it tries the harness's own addresses with generated
        # passwords: five of those lock the account, and the fuzzer could not
        # log in again.
        email = case.body["email"].strip().lower()
        return email not in PROTECTED_EMAILS or email == CREDENTIALS_EMAIL
    return True


# 3. The `credentials` run: its session is a fixed access token (a password
# change keeps the session it is made from), set up by the script.
if CREDENTIALS_EMAIL:

    class _Credentials:
        lock = threading.Lock()
        password = os.environ["FUZZ_CREDENTIALS_PASSWORD"]

    def _is_positive(case) -> bool:
        meta = case.meta
        return meta is not None and meta.generation.mode.is_positive

    @schemathesis.hook
    def map_case(context, case):
        label = case.operation.label
        body = case.body
        if label not in (LOGIN, CHANGE) or not _is_positive(case) or not isinstance(body, dict):
            return case
        with _Credentials.lock:
            if label == LOGIN and isinstance(body.get("email"), str) and isinstance(body.get("password"), str):
                case.body = {**body, "email": CREDENTIALS_EMAIL, "password": _Credentials.password}
            elif label == CHANGE and isinstance(body.get("current_password"), str):
                case.body = {**body, "current_password": _Credentials.password}
        return case

    @schemathesis.hook
    def after_call(context, case, response):
        body = case.body
        if (
            case.operation.label == CHANGE
            and response.status_code == 200
            and isinstance(body, dict)
            and isinstance(body.get("new_password"), str)
        ):
            with _Credentials.lock:
                _Credentials.password = body["new_password"]
