"""The keys API on a real server: the admin token creates, lists and revokes; nobody else."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.server.conftest import ADMIN_TOKEN, Running
from watchkeeper.server._roles import Role


@pytest.fixture
def server(make_server: Callable[..., Running]) -> Running:
    """A server with an admin token, so auth is on."""
    return make_server(auth={"admin_token": ADMIN_TOKEN})


@pytest.mark.slow
def test_admin_creates_lists_and_revokes_keys(server: Running) -> None:
    body = {"project": "shop", "name": "ci", "role": "viewer"}
    r = server.request("POST", "/api/v1/keys", ADMIN_TOKEN, json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    token, key_id = created["token"], created["key_id"]
    assert token.startswith("wk_") and created["project"] == "shop" and created["name"] == "ci"
    assert created["role"] == "viewer"
    assert server.get("/api/v1/traces", token, params={"range": "1h"}).status_code == 200

    listed = server.get("/api/v1/keys", ADMIN_TOKEN)
    assert listed.status_code == 200
    (item,) = [k for k in listed.json()["items"] if k["key_id"] == key_id]
    assert item["revoked_at"] is None and "token" not in item and token not in listed.text
    assert item["role"] == "viewer"

    assert server.request("DELETE", f"/api/v1/keys/{key_id}", ADMIN_TOKEN).status_code == 204
    assert server.get("/api/v1/traces", token).status_code == 401
    again = server.request("DELETE", f"/api/v1/keys/{key_id}", ADMIN_TOKEN)
    assert again.status_code == 404 and "no active key" in again.json()["error"]
    (item,) = [k for k in server.get("/api/v1/keys", ADMIN_TOKEN).json()["items"]]
    assert item["revoked_at"] is not None


@pytest.mark.slow
def test_without_the_admin_token_key_routes_refuse(server: Running) -> None:
    _, project_key = server.services.keys.create("shop", role=Role.EDITOR)
    body = {"project": "other"}
    for method, path in (("POST", "/api/v1/keys"), ("GET", "/api/v1/keys"),
                         ("DELETE", "/api/v1/keys/0123456789abcdef")):  # fmt: skip
        kwargs = {"json": body} if method == "POST" else {}
        assert server.request(method, path, **kwargs).status_code == 401
        wrong = server.request(method, path, "wk_wrong", **kwargs)
        assert wrong.status_code == 401 and "wk_wrong" not in wrong.text
        near = server.request(method, path, ADMIN_TOKEN[:-1] + "X", **kwargs)
        assert near.status_code == 401 and ADMIN_TOKEN[:-1] not in near.text
        forbidden = server.request(method, path, project_key, **kwargs)
        assert forbidden.status_code == 403 and "admin role" in forbidden.json()["error"]
    assert [k.project for k in server.services.keys.list()] == ["shop"]


@pytest.mark.slow
def test_the_admin_token_reads_no_project_data(server: Running) -> None:
    r = server.get("/api/v1/traces", ADMIN_TOKEN, params={"range": "1h"})
    assert r.status_code == 403 and ADMIN_TOKEN not in r.text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"not json", "not JSON"),
        (b'{"name": "x"}', "project"),
        (b'{"project": "no spaces"}', "project name"),
        (b'{"project": "ok", "extra": 1}', "extra"),
        (b'{"project": "ok", "role": "owner"}', "role"),
    ],
)
@pytest.mark.slow
def test_bad_bodies_get_400(server: Running, body: bytes, expected: str) -> None:
    r = server.request("POST", "/api/v1/keys", ADMIN_TOKEN, content=body)
    assert r.status_code == 400 and expected in r.json()["error"]


@pytest.mark.slow
def test_with_auth_off_key_routes_are_open_until_the_first_key(
    make_server: Callable[..., Running],
) -> None:
    server = make_server()
    assert server.get("/api/v1/keys").json() == {"items": []}
    r = server.request("POST", "/api/v1/keys", json={"project": "shop", "role": "admin"})
    assert r.status_code == 201
    # The first key turns auth on (and it stays on): from now on, the admin token or an
    # admin key only.
    assert server.get("/api/v1/keys").status_code == 401
    assert server.get("/api/v1/traces").status_code == 401
    assert server.get("/api/v1/traces", r.json()["token"]).status_code == 200
    assert server.get("/api/v1/keys", r.json()["token"]).status_code == 200


@pytest.mark.slow
def test_a_key_without_a_role_is_an_ingest_key(server: Running) -> None:
    r = server.request("POST", "/api/v1/keys", ADMIN_TOKEN, json={"project": "shop"})
    assert r.status_code == 201 and r.json()["role"] == "ingest"
    refused = server.get("/api/v1/traces", r.json()["token"])
    assert refused.status_code == 403 and "viewer role" in refused.json()["error"]


@pytest.mark.slow
def test_an_admin_key_manages_its_own_projects_keys_only(server: Running) -> None:
    _, admin = server.services.keys.create("shop", role=Role.ADMIN)
    theirs, _ = server.services.keys.create("other", role=Role.VIEWER)
    r = server.request("POST", "/api/v1/keys", admin, json={"project": "shop", "role": "editor"})
    assert r.status_code == 201 and r.json()["role"] == "editor"
    mine = r.json()["key_id"]
    elsewhere = server.request("POST", "/api/v1/keys", admin, json={"project": "other"})
    assert elsewhere.status_code == 403 and "admin role on project other" in elsewhere.text
    listed = server.get("/api/v1/keys", admin).json()["items"]
    assert {k["project"] for k in listed} == {"shop"} and len(listed) == 2
    # Another project's key is not found, and stays active.
    assert server.request("DELETE", f"/api/v1/keys/{theirs.key_id}", admin).status_code == 404
    assert server.request("DELETE", f"/api/v1/keys/{mine}", admin).status_code == 204
    assert [k.revoked_at for k in server.services.keys.list() if k.project == "other"] == [None]
