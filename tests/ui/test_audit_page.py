"""The audit log page in Chromium: a change made in the UI is found there, with who made it."""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import Server


def _loaded(page: Any) -> None:
    page.wait_for_selector("#main[aria-busy='false']")


def _admin_key_id(server: Server) -> str:
    entries = server.api("/api/v1/audit", action="rule.disable")["items"]
    return str(entries[0]["actor"])


def test_a_change_made_in_the_ui_is_on_the_audit_page(page: Any, server: Server) -> None:
    page.goto("/alerts/rules")
    _loaded(page)
    row = page.locator("tbody tr", has_text="error-spike")
    row.get_by_role("button", name="Disable").click()
    page.locator("tbody tr", has_text="error-spike").get_by_role("button", name="Enable").wait_for()
    try:
        page.get_by_role("link", name="Audit log").click()
        _loaded(page)
        entry = page.locator("tbody tr", has_text="rule.disable").first
        entry.wait_for()
        text = entry.inner_text()
        assert "rule error-spike" in text and _admin_key_id(server) in text
        assert "127.0.0.1" in text and "key" in text
        entry.locator("summary").click()  # unfold what changed
        assert "true → false" in entry.locator("dd").first.inner_text()

        page.get_by_label("Action").fill("no.such.*")  # a filter that matches nothing
        page.get_by_role("button", name="Filter").click()
        page.get_by_text("No changes recorded").wait_for()
        assert "action=no.such" in page.url
    finally:
        page.goto("/alerts/rules")
        _loaded(page)
        page.locator("tbody tr", has_text="error-spike").get_by_role(
            "button", name="Enable"
        ).click()
        page.locator("tbody tr", has_text="error-spike").get_by_role(
            "button", name="Disable"
        ).wait_for()
