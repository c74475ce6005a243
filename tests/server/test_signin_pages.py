"""In Chromium: a person signs in on the sign-in page, is refused what their role lacks (the
page shows the 403's message), changes their password, an admin grants a role on the People
page, and signing out ends the session; single sign-on from the same page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.server._oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider
from tests.server.conftest import ADMIN_TOKEN, Running
from watchkeeper.server._roles import Role
from watchkeeper.server._sessions import COOKIE

PASSWORD = "correct horse battery"


def _ready(page: Any) -> None:
    page.wait_for_selector("#main[aria-busy='false']", timeout=30_000)


def _sign_in(page: Any, username: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


@pytest.mark.browser
def test_sign_in_be_refused_be_granted_sign_out(
    make_server: Callable[..., Running], new_page: Callable[[Running], Any]
) -> None:
    server = make_server(auth={"admin_token": ADMIN_TOKEN})
    assert server.services.signin is not None
    people = server.services.signin.people
    people.create("vic", PASSWORD, actor="test")
    people.set_role("vic", "shop", Role.VIEWER, actor="test")
    people.create("ada", PASSWORD, actor="test")
    people.set_role("ada", "shop", Role.ADMIN, actor="test")

    page = new_page(server)
    page.goto("/traces")
    page.wait_for_url("**/signin?next=%2Ftraces")  # a 401 leads to the sign-in page
    page.get_by_label("Password").fill("not the password")
    page.get_by_label("Username").fill("vic")
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("alert").filter(has_text="wrong username or password").wait_for()
    _sign_in(page, "vic")
    page.wait_for_url("**/traces")
    _ready(page)
    assert page.get_by_test_id("signed-in-as").inner_text() == "Signed in as vic"
    assert page.locator("#nav").get_by_text("People").count() == 0  # not an admin anywhere

    page.goto("/admin/people")  # typed in: the API refuses, the page says why
    _ready(page)
    refusal = page.locator(".error", has_text="Could not load members")
    refusal.wait_for()
    assert "this needs the admin role on project shop" in refusal.inner_text()
    assert "person vic has the viewer role" in refusal.inner_text()

    page.get_by_test_id("signed-in-as").get_by_role("link").click()  # their own account
    page.wait_for_url("**/account")
    _ready(page)
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password").fill("a brand new password")
    page.get_by_role("button", name="Change password").click()
    page.get_by_text("Password changed").wait_for()
    assert people.authenticate("vic", "a brand new password") is not None

    admin = new_page(server)
    admin.goto("/signin")
    _sign_in(admin, "ada")
    admin.wait_for_url(lambda url: not url.endswith("/signin"))
    admin.locator("#nav").get_by_text("People").click()
    _ready(admin)
    admin.get_by_label("Role of vic in shop").select_option("editor")
    admin.get_by_text("vic is now editor in shop").wait_for()
    assert people.get("vic").roles == {"shop": Role.EDITOR}  # type: ignore[union-attr]
    admin.locator("#nav").get_by_text("Audit log").click()  # the change, on the record
    _ready(admin)
    entry = admin.locator("tbody tr", has_text="member.set").first
    entry.wait_for()
    assert "person ada" in entry.inner_text() and "person vic in project shop" in entry.inner_text()

    page.locator("#sign-out").click()
    page.wait_for_url("**/signin")
    assert all(c["name"] != COOKIE for c in page.context.cookies())
    page.goto("/traces")
    page.wait_for_url("**/signin?next=%2Ftraces")


@pytest.mark.browser
def test_single_sign_on_from_the_sign_in_page(
    make_server: Callable[..., Running], new_page: Callable[[Running], Any]
) -> None:
    provider = Provider().start()
    try:
        grant = {"value": "wk-viewers", "project": "shop", "role": "viewer"}
        oidc = {"issuer": provider.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "label": "Example SSO", "role_claim": "groups", "grants": [grant]}  # fmt: skip
        server = make_server(auth={"admin_token": ADMIN_TOKEN}, oidc=oidc)
        page = new_page(server)
        page.goto("/traces")
        page.wait_for_url("**/signin?next=%2Ftraces")
        page.get_by_role("link", name="Sign in with Example SSO").click()
        page.wait_for_url("**/traces")  # through the provider and back
        _ready(page)
        assert page.get_by_test_id("signed-in-as").inner_text() == "Signed in as carol"
        provider.tamper = "forged"
        page.locator("#sign-out").click()
        page.wait_for_url("**/signin")
        page.get_by_role("link", name="Sign in with Example SSO").click()
        alert = page.get_by_role("alert").filter(has_text="ID token was refused")
        alert.wait_for()
    finally:
        provider.close()
