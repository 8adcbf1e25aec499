from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Request, expect

from tests.e2e.conftest import E2E_EMAIL, E2E_PASSWORD

pytestmark = pytest.mark.e2e


def test_log_in_open_accounts_and_search(page: Page, live_server: str) -> None:
    foreign: list[str] = []

    def watch(request: Request) -> None:
        if not request.url.startswith(live_server):
            foreign.append(request.url)

    page.on("request", watch)
    page.goto(f"{live_server}/accounts")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Faccounts$"))

    page.get_by_label("Email").fill(E2E_EMAIL)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid email or password")

    page.get_by_label("Password").fill(E2E_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server}/accounts")
    expect(page.locator("#result-count")).to_have_text("74 accounts")
    expect(page.locator("#accounts-table tbody tr")).to_have_count(50)

    # Typing searches without a page reload (htmx swaps the results in place).
    page.evaluate("window.__marker = 'same page'")
    page.get_by_role("searchbox", name="Search accounts").fill("golden")
    expect(page.locator("#result-count")).to_have_text("2 accounts")
    rows = page.locator("#accounts-table tbody tr td:first-child")
    expect(rows).to_have_text(["Golden Gate Catering", "Golden Hour Photography"])
    assert page.evaluate("window.__marker") == "same page"
    expect(page).to_have_url(re.compile(r"q=golden"))

    page.get_by_role("link", name="Golden Hour Photography").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Golden Hour Photography")
    assert foreign == []


def test_filter_and_page_through_accounts(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(E2E_EMAIL)
    page.get_by_label("Password").fill(E2E_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Accounts").click()
    page.get_by_label("Category").select_option("photographer")
    expect(page.locator("#result-count")).to_have_text("71 accounts")
    page.get_by_role("link", name="Next →").click()
    expect(page.locator("#accounts-table tbody tr")).to_have_count(21)
    page.get_by_role("link", name="← Previous").click()
    expect(page.locator("#accounts-table tbody tr")).to_have_count(50)
