"""People on a real server: accounts, sessions in a cookie, CSRF, the sign-in throttle,
members and their roles, and the audit seam."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.server.conftest import ADMIN_TOKEN, Running
from watchkeeper.cli import main
from watchkeeper.server._people import PeopleEvent
from watchkeeper.server._roles import Role
from watchkeeper.server._sessions import COOKIE

PASSWORD = "correct horse battery"


def _person(server: Running, name: str, role: Role | None = None, **kw: Any) -> None:
    people = server.services.signin.people  # type: ignore[union-attr]
    people.create(name, PASSWORD, actor="test", **kw)
    if role is not None:
        people.set_role(name, "shop", role, actor="test")


def _sign_in(server: Running, name: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
    """A browser-like client signed in as `name`, and its CSRF token."""
    client = httpx.Client(base_url=server.url)
    r = client.post("/api/v1/session", json={"username": name, "password": password})
    assert r.status_code == 200, r.text
    return client, r.json()["csrf_token"]


@pytest.fixture
def server(make_server: Callable[..., Running]) -> Running:
    return make_server(auth={"admin_token": ADMIN_TOKEN})


@pytest.mark.slow
def test_a_session_cookie_is_httponly_samesite_and_secure_when_asked(
    make_server: Callable[..., Running],
) -> None:
    plain = make_server(auth={"admin_token": ADMIN_TOKEN})
    _person(plain, "ann", Role.VIEWER)
    r = httpx.post(plain.url + "/api/v1/session", json={"username": "ann", "password": PASSWORD})
    cookie = r.headers["set-cookie"].lower()
    assert f"{COOKIE}=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "path=/" in cookie and "secure" not in cookie  # plain http on loopback
    assert PASSWORD not in r.text
    behind_tls = make_server(auth={"admin_token": ADMIN_TOKEN}, sessions={"secure_cookie": True})
    _person(behind_tls, "ann", Role.VIEWER)
    r = httpx.post(behind_tls.url + "/api/v1/session",
                   json={"username": "ann", "password": PASSWORD})  # fmt: skip
    secure = r.headers["set-cookie"]
    assert secure.startswith("__Host-wk_session=") and "secure" in secure.lower()
    token = r.cookies["__Host-wk_session"]
    traces = behind_tls.url + "/api/v1/traces"
    ok = httpx.get(traces, params={"range": "1h"}, headers={"Cookie": f"__Host-wk_session={token}"})
    assert ok.status_code == 200, ok.text
    planted = httpx.get(traces, params={"range": "1h"}, headers={"Cookie": f"{COOKIE}={token}"})
    assert planted.status_code == 401  # a cookie without the prefix is not this server's


@pytest.mark.slow
def test_a_person_acts_with_their_role(server: Running) -> None:
    _person(server, "vic", Role.VIEWER)
    client, csrf = _sign_in(server, "vic")
    who = client.get("/api/v1/session").json()
    assert (who["kind"], who["username"], who["roles"], who["csrf_token"]) == (
        "person", "vic", {"shop": "viewer"}, csrf)  # fmt: skip
    assert client.get("/api/v1/traces", params={"range": "1h"}).status_code == 200
    rule = {"id": "r1", "kind": "latency", "statistic": "p95", "threshold": 500, "window": "5m"}
    refused = client.post("/api/v1/rules", json=rule, headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403
    assert "editor role" in refused.json()["error"] and "ask an admin" in refused.json()["error"]


@pytest.mark.slow
def test_changes_with_the_cookie_need_the_csrf_token_and_this_origin(server: Running) -> None:
    _person(server, "eve", Role.EDITOR)
    client, csrf = _sign_in(server, "eve")
    silence = {"matchers": ["service=chat"], "duration": "1h", "comment": "csrf"}
    attempts = {
        "no token": {},
        "wrong token": {"X-CSRF-Token": "x" * 43},
        "another origin": {"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
        "cross-site fetch": {"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"},
    }
    for label, headers in attempts.items():
        r = client.post("/api/v1/silences", json=silence, headers=headers)
        assert r.status_code == 403, (label, r.text)
    assert 'watchkeeper_auth_rejected_total{reason="csrf"} 4.0' in server.get("/metrics").text
    ok = client.post("/api/v1/silences", json=silence,
                     headers={"X-CSRF-Token": csrf, "Origin": server.url,
                              "Sec-Fetch-Site": "same-origin"})  # fmt: skip
    assert ok.status_code == 201, ok.text
    # A key in the Authorization header is no cookie: no CSRF token asked.
    _, key = server.services.keys.create("shop", role=Role.EDITOR)
    assert server.request("POST", "/api/v1/silences", key, json=silence).status_code == 201


@pytest.mark.slow
def test_sign_out_ends_the_session(server: Running) -> None:
    _person(server, "sam", Role.VIEWER)
    client, csrf = _sign_in(server, "sam")
    token = client.cookies[COOKIE]
    assert client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    replay = httpx.get(server.url + "/api/v1/traces", headers={"Cookie": f"{COOKIE}={token}"})
    assert replay.status_code == 401 and "sign in again" in replay.json()["error"]
    assert token not in replay.text


@pytest.mark.slow
def test_disabling_or_a_new_password_ends_sessions_at_once(server: Running) -> None:
    _person(server, "dan", Role.VIEWER)
    first, _ = _sign_in(server, "dan")
    patch = server.request("PATCH", "/api/v1/people/dan", ADMIN_TOKEN,
                           json={"password": "another long password"})  # fmt: skip
    assert patch.status_code == 200, patch.text
    assert first.get("/api/v1/traces", params={"range": "1h"}).status_code == 401
    second, _ = _sign_in(server, "dan", "another long password")
    server.request("PATCH", "/api/v1/people/dan", ADMIN_TOKEN, json={"disabled": True})
    assert second.get("/api/v1/traces", params={"range": "1h"}).status_code == 401
    r = httpx.post(server.url + "/api/v1/session",
                   json={"username": "dan", "password": "another long password"})  # fmt: skip
    assert r.status_code == 401 and r.json()["error"] == "wrong username or password"


@pytest.mark.slow
def test_failures_say_nothing_of_who_exists_and_are_throttled(
    make_server: Callable[..., Running],
) -> None:
    server = make_server(auth={"admin_token": ADMIN_TOKEN}, sessions={"login_free_attempts": 3})
    _person(server, "tom", Role.VIEWER)
    login = server.url + "/api/v1/session"
    unknown = httpx.post(login, json={"username": "nobody", "password": "whatever it is"})
    wrong = httpx.post(login, json={"username": "tom", "password": "not the password"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json() == {"error": "wrong username or password"}
    free = 3
    for _ in range(free - 2):  # this address's failures reach the free ones
        assert (
            httpx.post(login, json={"username": "tom", "password": "nope nope"}).status_code == 401
        )
    throttled = httpx.post(login, json={"username": "tom", "password": PASSWORD})
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    assert "try again in" in throttled.json()["error"]
    metrics = server.get("/metrics").text
    assert f'watchkeeper_logins_total{{method="password",result="failure"}} {free}.0' in metrics
    assert 'watchkeeper_logins_total{method="password",result="throttled"} 1.0' in metrics


@pytest.mark.slow
def test_login_from_another_site_is_refused(server: Running) -> None:
    _person(server, "liz", Role.VIEWER)
    r = httpx.post(server.url + "/api/v1/session", json={"username": "liz", "password": PASSWORD},
                   headers={"Origin": "https://evil.example"})  # fmt: skip
    assert r.status_code == 403 and "set-cookie" not in r.headers


@pytest.mark.slow
def test_members_are_managed_by_admins_of_their_project(server: Running) -> None:
    _person(server, "ada", Role.ADMIN)
    _person(server, "bob")
    client, csrf = _sign_in(server, "ada")
    h = {"X-CSRF-Token": csrf}
    assert (
        client.put("/api/v1/members/shop/bob", json={"role": "viewer"}, headers=h).status_code
        == 200
    )
    listed = client.get("/api/v1/members").json()["items"]
    assert {(m["project"], m["username"], m["role"]) for m in listed} == {
        ("shop", "ada", "admin"), ("shop", "bob", "viewer")}  # fmt: skip
    other = client.put("/api/v1/members/bank/bob", json={"role": "viewer"}, headers=h)
    assert other.status_code == 403 and "admin role on project bank" in other.json()["error"]
    account = client.post(
        "/api/v1/people", json={"username": "zed", "password": PASSWORD}, headers=h
    )
    assert account.status_code == 403 and "server administrator" in account.json()["error"]
    assert client.delete("/api/v1/members/shop/bob", headers=h).status_code == 204
    assert client.delete("/api/v1/members/shop/bob", headers=h).status_code == 404


@pytest.mark.slow
def test_a_server_admin_manages_accounts_and_reads_no_data_without_a_role(
    server: Running,
) -> None:
    _person(server, "root", admin=True)
    client, csrf = _sign_in(server, "root")
    h = {"X-CSRF-Token": csrf}
    weak = client.post(
        "/api/v1/people", json={"username": "kim", "password": "kim-kim-kim-kim"}, headers=h
    )
    assert weak.status_code == 400 and "username" in weak.json()["error"]
    made = client.post("/api/v1/people", json={"username": "kim", "password": PASSWORD}, headers=h)
    assert made.status_code == 201 and "password" not in made.text.replace("has_password", "")
    assert client.get("/api/v1/traces", params={"project": "shop"}).status_code == 403
    own = client.patch("/api/v1/people/root", json={"disabled": True}, headers=h)
    assert own.status_code == 400


@pytest.mark.slow
def test_every_change_goes_through_the_audit_seam_in_its_transaction(server: Running) -> None:
    people = server.services.signin.people  # type: ignore[union-attr]
    seen: list[PeopleEvent] = []
    people.record = lambda _conn, event: seen.append(event)
    _person(server, "amy", Role.EDITOR)
    _sign_in(server, "amy")
    assert [e.action for e in seen] == ["person_created", "member_set", "login"]
    assert seen[1].after == {"role": "editor"} and seen[1].target == "person amy in project shop"

    def broken(_conn: sa.Connection, _event: PeopleEvent) -> None:
        raise RuntimeError("the audit log cannot be written")

    people.record = broken
    with pytest.raises(RuntimeError):
        people.set_role("amy", "shop", Role.ADMIN, actor="test")
    assert people.get("amy").roles == {"shop": Role.EDITOR}  # type: ignore[union-attr]


def test_the_users_command_makes_the_first_admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["users", "create", "root", "--admin", "--password-stdin", *data]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "create", "kim", "--password-stdin", *data]) == 2
    assert "too short" in capsys.readouterr().err
    assert main(["users", "grant", "root", "--project", "shop", "--role", "viewer", *data]) == 0
    assert main(["users", "disable", "root", *data]) == 0
    capsys.readouterr()
    assert main(["users", "list", *data]) == 0
    assert capsys.readouterr().out.split() == ["root", "admin", "disabled", "local", "shop:viewer"]


@pytest.mark.slow
def test_a_person_changes_their_own_password_and_ends_their_other_sessions(
    server: Running,
) -> None:
    _person(server, "pat", Role.VIEWER)
    elsewhere, _ = _sign_in(server, "pat")
    here, csrf = _sign_in(server, "pat")
    change = "/api/v1/session/password"
    h = {"X-CSRF-Token": csrf}
    wrong = here.post(change, json={"current_password": "guess guess guess",
                                    "new_password": "a new long password"}, headers=h)  # fmt: skip
    assert wrong.status_code == 401 and "current password is wrong" in wrong.json()["error"]
    weak = here.post(
        change, json={"current_password": PASSWORD, "new_password": "short"}, headers=h
    )
    assert weak.status_code == 400 and "too short" in weak.json()["error"]
    ok = here.post(change, json={"current_password": PASSWORD,
                                 "new_password": "a new long password"}, headers=h)  # fmt: skip
    assert ok.status_code == 204, ok.text
    assert here.get("/api/v1/traces", params={"range": "1h"}).status_code == 200
    assert elsewhere.get("/api/v1/traces", params={"range": "1h"}).status_code == 401
    _sign_in(server, "pat", "a new long password")
    _, key = server.services.keys.create("shop", role=Role.ADMIN)
    by_key = server.request(
        "POST", change, key, json={"current_password": "x", "new_password": "y"}
    )
    assert by_key.status_code == 403 and "needs a person signed in" in by_key.json()["error"]


@pytest.mark.slow
def test_a_person_in_several_projects_names_the_one_they_act_for(server: Running) -> None:
    _person(server, "max", Role.VIEWER)
    server.services.signin.people.set_role("max", "bank", Role.EDITOR, actor="test")  # type: ignore[union-attr]
    client, _ = _sign_in(server, "max")
    traces = "/api/v1/traces"
    unnamed = client.get(traces, params={"range": "1h"})
    assert unnamed.status_code == 403 and "several projects (bank, shop)" in unnamed.json()["error"]
    for project in ("shop", "bank"):
        named = client.get(
            traces, params={"range": "1h"}, headers={"X-Watchkeeper-Project": project}
        )
        assert named.status_code == 200, named.text
    other = client.get(traces, params={"range": "1h"}, headers={"X-Watchkeeper-Project": "lab"})
    assert other.status_code == 403 and "no role" in other.json()["error"]


@pytest.mark.slow
def test_people_changes_and_sign_ins_are_on_the_audit_log(server: Running) -> None:
    _person(server, "ada", Role.ADMIN)
    _person(server, "bob")
    client, csrf = _sign_in(server, "ada")
    h = {"X-CSRF-Token": csrf}
    assert client.put("/api/v1/members/shop/bob", json={"role": "editor"}, headers=h).is_success
    httpx.post(server.url + "/api/v1/session", json={"username": "bob", "password": "wrong one!"})
    entries = server.get("/api/v1/audit", ADMIN_TOKEN, params={"limit": 50}).json()["items"]
    seen = {(e["action"], e["actor_kind"], e["actor"], e["target"]) for e in entries}
    assert ("member.set", "person", "person ada", "person bob in project shop") in seen
    assert ("session.login", "person", "person ada", "person ada") in seen
    assert ("session.login_failed", "anonymous", "username 'bob'", "person bob") in seen
    assert ("person.create", "system", "test", "person ada") in seen
    member = next(e for e in entries if e["action"] == "member.set" and "bob" in e["target"])
    assert (member["project"], member["before"], member["after"]) == (
        "shop", {"role": None}, {"role": "editor"})  # fmt: skip
    assert member["address"] == "127.0.0.1"
    assert server.services.audit.verify().ok
