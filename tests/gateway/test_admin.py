"""The admin API: its own token, keys and accounts over HTTP, never a secret twice."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from .conftest import MakeGateway

TOKEN = "admin-secret-for-tests"


def call(
    url: str, method: str = "GET", body: Any = None, token: str | None = TOKEN
) -> tuple[int, Any]:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def admin_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("GIGAWATT_ADMIN_TOKEN", TOKEN)
    yield TOKEN


def test_admin_creates_lists_moves_and_revokes_keys(
    make_gateway: MakeGateway, admin_token: str
) -> None:
    gw = make_gateway()
    status, created = call(gw.url + "/admin/keys", "POST", {"account": "erin", "plan": "tiny"})
    assert status == 201 and created["secret"].startswith("gw-")
    secret = created["secret"]
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=secret, max_retries=0) as client:
        assert client.chat.completions.create(
            model="small", messages=[{"role": "user", "content": "hi"}]
        ).choices
    status, listed = call(gw.url + "/admin/keys?account=erin")
    assert status == 200 and [k["key_id"] for k in listed["keys"]] == [created["key_id"]]
    assert secret not in json.dumps(listed)
    status, usage = call(gw.url + "/admin/accounts/erin/usage")
    assert status == 200 and usage["plan"] == "tiny"
    status, moved = call(gw.url + "/admin/accounts/erin/plan", "POST", {"plan": "pro"})
    assert (status, moved["keys_updated"]) == (200, 1)
    status, revoked = call(gw.url + f"/admin/keys/{created['key_id']}/revoke", "POST")
    assert (status, revoked["revoked"]) == (200, True)
    gw.gateway.keys.forget()
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=secret, max_retries=0)
    with client, pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="small", messages=[{"role": "user", "content": "x"}])


def test_the_admin_api_needs_its_own_token(make_gateway: MakeGateway, admin_token: str) -> None:
    gw = make_gateway()
    api_key = gw.key()
    assert call(gw.url + "/admin/keys", token=None)[0] == 401
    assert call(gw.url + "/admin/keys", token=api_key)[0] == 401
    assert call(gw.url + "/admin/keys", token="wrong")[0] == 401


def test_the_admin_api_is_off_without_a_token(
    make_gateway: MakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GIGAWATT_ADMIN_TOKEN", raising=False)
    gw = make_gateway()
    status, body = call(gw.url + "/admin/keys", token="anything")
    assert status == 403 and "admin API is off" in body["error"]["message"]


@pytest.mark.parametrize(
    "method, path, body, status",
    [
        ("POST", "/admin/keys", {"account": "x", "plan": "gold"}, 400),
        ("POST", "/admin/keys", {"plan": "pro"}, 400),
        ("POST", "/admin/keys/key_nope/revoke", None, 404),
        ("GET", "/admin/nothing", None, 404),
        ("GET", "/admin/accounts/nobody/usage", None, 400),
    ],
)
def test_bad_admin_requests(
    make_gateway: MakeGateway, admin_token: str, method: str, path: str, body: Any, status: int
) -> None:
    gw = make_gateway()
    got, error = call(gw.url + path, method, body)
    assert got == status and error["error"]["message"]
