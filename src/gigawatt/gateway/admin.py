"""The admin API, behind its own token: keys and accounts over HTTP.

    GET  /admin/keys[?account=NAME]          list keys (never secrets)
    POST /admin/keys                         {"account", "plan", "label"?} -> the secret, once
    POST /admin/keys/{key_id}/revoke
    POST /admin/accounts/{account}/plan      {"plan"} -> moves every key of the account
    GET  /admin/accounts/{account}/usage[?plan=NAME]

The token is read from the environment variable `gateway.admin_token_env` names; with none set
the admin API is off. API keys never open it.
"""

from __future__ import annotations

import hmac
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from gigawatt.errors import StateError
from gigawatt.gateway.errors import GatewayError
from gigawatt.gateway.requests import api_key, parse_json

if TYPE_CHECKING:
    from gigawatt.gateway.app import Gateway, Receive


def check_admin(gateway: Gateway, headers: dict[str, str]) -> None:
    name = gateway.policy.gateway.admin_token_env
    expected = os.environ.get(name, "")
    if not expected:
        raise GatewayError("permission", f"the admin API is off: set ${name} to enable it")
    presented = api_key(headers) or ""
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise GatewayError("authentication", "invalid admin token")


async def handle(
    gateway: Gateway, method: str, path: str, query: str, headers: dict[str, str], receive: Receive
) -> tuple[int, Any]:
    """(status, JSON body) for one admin request; raises GatewayError for refusals."""
    check_admin(gateway, headers)
    parts = [unquote(p) for p in path.strip("/").split("/")]
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    store = gateway.keys.store
    now = gateway.clock()
    try:
        if parts == ["admin", "keys"] and method == "GET":
            records = store.list(params.get("account"))
            return 200, {"keys": [r.as_json() for r in records]}
        if parts == ["admin", "keys"] and method == "POST":
            body = parse_json(await gateway.read_body(headers, receive))
            account, plan = _text(body, "account"), _plan(gateway, body)
            record, secret = store.create(account, plan, now, label=str(body.get("label", "")))
            return 201, {**record.as_json(), "secret": secret}
        if len(parts) == 4 and parts[:2] == ["admin", "keys"] and parts[3] == "revoke":
            if method != "POST":
                raise GatewayError("invalid_request", "use POST to revoke a key")
            try:
                revoked = store.revoke(parts[2], now)
            except ValueError as exc:
                raise GatewayError("not_found", str(exc)) from exc
            return 200, {"key_id": parts[2], "revoked": revoked}
        if len(parts) == 4 and parts[:2] == ["admin", "accounts"] and parts[3] == "plan":
            if method != "POST":
                raise GatewayError("invalid_request", "use POST to change an account's plan")
            body = parse_json(await gateway.read_body(headers, receive))
            changed = store.set_plan(parts[2], _plan(gateway, body))
            gateway.keys.forget()  # the new plan applies from the next request
            return 200, {"account": parts[2], "keys_updated": changed}
        if len(parts) == 4 and parts[:2] == ["admin", "accounts"] and parts[3] == "usage":
            plan = params.get("plan") or _account_plan(gateway, parts[2])
            if plan not in gateway.policy.plans:
                raise GatewayError("invalid_request", f"unknown plan {plan!r}", param="plan")
            statuses = gateway.limiter.snapshot(parts[2], plan, now)
            return 200, {
                "account": parts[2],
                "plan": plan,
                "limits": [s.as_json() for s in statuses],
            }
    except StateError as exc:
        raise GatewayError("state_unavailable", f"the state store failed: {exc}") from exc
    except ValueError as exc:
        raise GatewayError("invalid_request", str(exc)) from exc
    raise GatewayError("not_found", f"no such admin endpoint: {method} {path}")


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise GatewayError("invalid_request", f"'{name}' must be a non-empty string", param=name)
    return value


def _plan(gateway: Gateway, body: dict[str, Any]) -> str:
    plan = _text(body, "plan")
    if plan not in gateway.policy.plans:
        raise GatewayError(
            "invalid_request",
            f"unknown plan {plan!r}; plans: {', '.join(gateway.policy.plans)}",
            param="plan",
        )
    return plan


def _account_plan(gateway: Gateway, account: str) -> str:
    plans = {r.plan for r in gateway.keys.store.list(account) if r.revoked_at is None}
    if len(plans) != 1:
        raise GatewayError(
            "invalid_request", f"account {account!r} has no single plan; pass ?plan=", "plan"
        )
    return plans.pop()
