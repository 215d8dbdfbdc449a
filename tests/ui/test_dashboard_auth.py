"""The dashboard on a cluster with auth enabled, in headless Chromium: it asks to sign in, and a user whose
role may read one prefix sees that prefix (keys, values, live watch) and a quiet "not permitted" where
etcd refuses it, never another user's keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.servers import Server, start_etcdpy
from tests.ui.browser import attr, click, css, one, screenshot, start_browser, texts, wait
from tests.ui.data import b64, put

ROOT_PW = "root-pw"


def auth_call(url: str, path: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    resp = httpx.post(f"{url}/v3/auth/{path}", json=body, headers={"Authorization": token} if token else {})
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_etcdpy(tmp_path_factory.mktemp("ui-auth"))
    try:
        for key, value in (("/apps/alice/config.json", '{"debug": false, "workers": 4}'),
                           ("/apps/alice/endpoint", "https://alice.internal:8443"),
                           ("/apps/bob/secret", "bob's password"), ("/top-secret", "nope")):
            put(srv.url, key, value)
        auth_call(srv.url, "user/add", {"name": "root", "password": ROOT_PW})
        auth_call(srv.url, "user/grant", {"user": "root", "role": "root"})
        auth_call(srv.url, "role/add", {"name": "alice-app"})
        auth_call(srv.url, "role/grant", {"name": "alice-app", "perm": {
            "permType": "READWRITE", "key": b64("/apps/alice/"), "range_end": b64("/apps/alice0")}})
        auth_call(srv.url, "user/add", {"name": "alice", "password": "alice-pw"})
        auth_call(srv.url, "user/grant", {"user": "alice", "role": "alice-app"})
        auth_call(srv.url, "enable", {})
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(browser: WebDriver, name: str, password: str) -> None:
    one(browser, "#login-name").send_keys(name)
    one(browser, "#login-password").send_keys(password)
    one(browser, "#login-submit").click()


def test_restricted_user_signs_in_and_sees_only_their_keys(server: Server, browser: WebDriver) -> None:
    browser.get(f"{server.url}/ui/")
    wait(browser, lambda d: one(d, "#login").is_displayed(), what="sign-in form")
    # A wrong password is refused with etcd's message, and the form stays.
    sign_in(browser, "alice", "wrong")
    wait(browser, lambda d: "authentication failed" in one(d, "#login-error").text, what="refusal shown")
    one(browser, "#login-password").clear()
    screenshot(browser, "login")
    one(browser, "#login-password").send_keys("alice-pw")
    one(browser, "#login-submit").click()
    wait(browser, lambda d: not one(d, "#login").is_displayed(), what="signed in")
    assert one(browser, "#user-name").text == "Signed in as alice"

    # The whole keyspace is not alice's to list: a notice and the ranges she may read, no error.
    notice = one(browser, "[data-testid=forbidden]")
    assert "alice" in notice.text and "may not list" in notice.text
    readable = one(browser, "[data-testid=readable]")
    assert readable.text.startswith("/apps/alice/*")
    assert not css(browser, ".notice.error")
    screenshot(browser, "restricted")
    click(browser, "[data-testid=readable] a")
    wait(browser, lambda d: texts(d, "#tree-list li.key .name") == ["config.json", "endpoint"],
         what="her keys")
    click(browser, "#tree-list li.key a")
    wait(browser, lambda d: '"workers": 4' in one(d, "[data-testid=value]").text, what="her value")
    assert "bob" not in browser.find_element("css selector", "main").text

    # Bob's folder: refused as a range would be, shown as a notice.
    browser.get(f"{server.url}/ui/#/keys?prefix={b64('/apps/bob/').replace('=', '%3D')}")
    wait(browser, lambda d: css(d, "[data-testid=forbidden]"), what="bob's folder refused")
    assert "secret" not in one(browser, "#tree-list").text

    # Her live watch works through the token cookie (EventSource sends no header).
    browser.get(f"{server.url}/ui/#/watch?prefix=/apps/alice/")
    wait(browser, lambda d: attr(d, "#watch-status", "data-state") == "live", what="alice's watch live")
    token = auth_call(server.url, "authenticate", {"name": "root", "password": ROOT_PW})["token"]
    httpx.post(f"{server.url}/v3/kv/put", headers={"Authorization": token},
               json={"key": b64("/apps/alice/endpoint"), "value": b64("https://alice.internal:9443")})
    wait(browser, lambda d: "alice.internal:9443" in one(d, "#watch-events").text, what="event for alice")

    # Signing out asks again.
    click(browser, "#logout")
    wait(browser, lambda d: one(d, "#login").is_displayed(), what="sign-in after sign-out")
