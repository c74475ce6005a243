"""Single sign-on against a local OpenID Connect provider (tests/server/_oidc_provider.py):
the code flow with PKCE signs a person in; a forged, expired, unsigned token, another
audience or issuer, a wrong nonce, a replayed or foreign state sign nobody in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.server._oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider
from tests.server.conftest import ADMIN_TOKEN, Running
from watchkeeper.server._oidc import STATE_COOKIE
from watchkeeper.server._sessions import COOKIE


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider().start()
    yield p
    p.close()


@pytest.fixture
def server(make_server: Callable[..., Running], provider: Provider) -> Running:
    oidc = {"issuer": provider.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "role_claim": "groups", "grants": [{"value": "wk-viewers", "project": "shop",
                                                "role": "viewer"}]}  # fmt: skip
    return make_server(auth={"admin_token": ADMIN_TOKEN}, oidc=oidc)


def _sign_in(server: Running, browser: httpx.Client) -> httpx.Response:
    """Click "sign in with SSO", let the provider sign in at once, follow it back."""
    start = browser.get(f"{server.url}/api/v1/oidc/login", params={"next": "/traces"})
    assert start.status_code == 302, start.text
    at_provider = httpx.get(start.headers["location"], follow_redirects=False)
    assert at_provider.status_code == 302, at_provider.text
    return browser.get(at_provider.headers["location"])


def _error(answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text
    where = urlsplit(answer.headers["location"])
    assert where.path == "/signin"
    return parse_qs(where.query)["error"][0]


@pytest.mark.slow
def test_the_code_flow_with_pkce_signs_a_person_in(server: Running, provider: Provider) -> None:
    with httpx.Client() as browser:
        answer = _sign_in(server, browser)
        assert answer.status_code == 303 and answer.headers["location"] == "/traces"
        assert "httponly" in answer.headers["set-cookie"].lower()
        who = browser.get(f"{server.url}/api/v1/session").json()
        assert (who["kind"], who["username"], who["roles"]) == (
            "person",
            "carol",
            {"shop": "viewer"},
        )
        assert browser.get(f"{server.url}/api/v1/traces", params={"range": "1h"}).status_code == 200
    asked = provider.authorize_requests[0]
    assert asked["code_challenge_method"] == "S256" and asked["nonce"] and asked["state"]
    assert len(asked["code_challenge"]) == 43  # base64url of a SHA-256
    with httpx.Client() as again:  # the same identity finds the same account
        assert _sign_in(server, again).status_code == 303
    people = server.get("/api/v1/people", ADMIN_TOKEN).json()["items"]
    assert [(p["username"], p["sso"], p["has_password"]) for p in people] == [
        ("carol", True, False)
    ]


@pytest.mark.slow
def test_roles_follow_the_claim_at_each_sign_in(server: Running, provider: Provider) -> None:
    with httpx.Client() as browser:
        _sign_in(server, browser)
    provider.claims["groups"] = ["someone-else"]
    with httpx.Client() as browser:
        _sign_in(server, browser)
        assert browser.get(f"{server.url}/api/v1/session").json()["roles"] == {}
        refused = browser.get(f"{server.url}/api/v1/traces", params={"range": "1h"})
        assert refused.status_code == 403 and "viewer role" in refused.json()["error"]


@pytest.mark.slow
@pytest.mark.parametrize("tamper", ["forged", "expired", "nonce", "audience", "issuer", "unsigned"])
def test_a_bad_id_token_signs_nobody_in(server: Running, provider: Provider, tamper: str) -> None:
    provider.tamper = tamper
    with httpx.Client() as browser:
        message = _error(_sign_in(server, browser))
        assert "ID token was refused" in message, message
        assert COOKIE not in browser.cookies
        assert browser.get(f"{server.url}/api/v1/session").json()["signed_in"] is False
    assert server.get("/api/v1/people", ADMIN_TOKEN).json()["items"] == []
    metrics = server.get("/metrics").text
    assert 'watchkeeper_logins_total{method="sso",result="failure"} 1.0' in metrics


@pytest.mark.slow
def test_a_replayed_or_foreign_callback_signs_nobody_in(server: Running) -> None:
    with httpx.Client() as victim:
        start = victim.get(f"{server.url}/api/v1/oidc/login")
        back = httpx.get(start.headers["location"], follow_redirects=False).headers["location"]
        with httpx.Client() as attacker:  # the callback URL, in a browser that did not start it
            assert "not started in this browser" in _error(attacker.get(back))
        assert victim.get(back).status_code == 303  # the state was not spent by the attacker
        assert COOKIE in victim.cookies
    state = parse_qs(urlsplit(back).query)["state"][0]
    replay = httpx.get(back, headers={"Cookie": f"{STATE_COOKIE}={state}"})
    assert "unknown, used or too old" in _error(replay)  # a state is good once


@pytest.mark.slow
def test_a_local_account_is_never_taken_over(server: Running, provider: Provider) -> None:
    server.services.signin.people.create("carol", "a long local password", actor="test")
    with httpx.Client() as browser:
        assert "exists already" in _error(_sign_in(server, browser))
    people = server.get("/api/v1/people", ADMIN_TOKEN).json()["items"]
    assert [(p["username"], p["sso"]) for p in people] == [("carol", False)]


@pytest.mark.slow
def test_without_a_role_claim_a_person_waits_for_an_admin(
    make_server: Callable[..., Running], provider: Provider
) -> None:
    oidc: dict[str, Any] = {"issuer": provider.url, "client_id": CLIENT_ID,
                            "client_secret": CLIENT_SECRET}  # fmt: skip
    server = make_server(auth={"admin_token": ADMIN_TOKEN}, oidc=oidc)
    with httpx.Client() as browser:
        _sign_in(server, browser)
        traces = f"{server.url}/api/v1/traces"
        assert browser.get(traces, params={"range": "1h"}).status_code == 403
        granted = server.request("PUT", "/api/v1/members/shop/carol", ADMIN_TOKEN,
                                 json={"role": "viewer"})  # fmt: skip
        assert granted.status_code == 200, granted.text
        assert browser.get(traces, params={"range": "1h"}).status_code == 200


@pytest.mark.slow
def test_sso_routes_say_when_sso_is_off(make_server: Callable[..., Running]) -> None:
    server = make_server(auth={"admin_token": ADMIN_TOKEN})
    r = server.get("/api/v1/oidc/login")
    assert r.status_code == 404 and "not configured" in r.json()["error"]
    assert server.get("/api/v1/session").json()["sign_in"]["sso"] is False


@pytest.mark.slow
def test_a_provider_that_is_down_is_named_on_the_sign_in_page(
    make_server: Callable[..., Running], provider: Provider
) -> None:
    url = provider.url
    provider.close()
    oidc = {"issuer": url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    server = make_server(auth={"admin_token": ADMIN_TOKEN}, oidc=oidc)
    with httpx.Client() as browser:
        message = _error(browser.get(f"{server.url}/api/v1/oidc/login"))
    assert "discovery document could not be read" in message
