"""Headless Chromium for the dashboard tests: Debian's `chromium` driven through `chromium-driver` by
selenium. Waits are on DOM conditions (WebDriverWait), never fixed sleeps."""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.servers import REPO_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# The README's pictures are rewritten only on request (UPDATE_SCREENSHOTS=1), so a test run leaves the
# checkout clean; otherwise they go to a scratch folder, still taken (and so still exercised).
SHOTS = (REPO_ROOT / "docs" / "screenshots" if os.environ.get("UPDATE_SCREENSHOTS")
         else Path(tempfile.gettempdir()) / "etcdpy-screenshots")
WAIT_S = 20.0

T = TypeVar("T")


def start_browser() -> WebDriver:
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,900", "--force-device-scale-factor=1", "--hide-scrollbars"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def wait(driver: WebDriver, cond: Callable[[WebDriver], T | None | bool], timeout: float = WAIT_S,
         what: str = "") -> T:
    result: T = WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: cond(d) or None, message=what)
    return result


def css(driver: WebDriver, selector: str) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, selector)


def one(driver: WebDriver, selector: str) -> WebElement:
    return wait(driver, lambda d: next(iter(css(d, selector)), None), what=f"no {selector}")


def texts(driver: WebDriver, selector: str) -> list[str]:
    out: list[str] = driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((e) => e.textContent)", selector)
    return out


def js(driver: WebDriver, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


def keys_url(base: str, prefix: str = "", key: str | None = None) -> str:
    def enc(s: str) -> str:
        raw = base64.b64encode(s.encode()).decode()
        return raw.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")

    url = f"{base}/ui/#/keys?prefix={enc(prefix)}"
    return url + (f"&key={enc(key)}" if key is not None else "")


def screenshot(driver: WebDriver, name: str) -> Path:
    """Save a PNG (for the README's docs/screenshots/<name>.png with UPDATE_SCREENSHOTS=1)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    # Let running CSS transitions (highlight flashes, bars) settle out of the picture.
    js(driver, "document.getAnimations().forEach((a) => a.finish()); document.getElementById('toasts')"
               ".replaceChildren()")
    driver.save_screenshot(str(path))
    return path


def attr(driver: WebDriver, selector: str, name: str) -> str | None:
    """An attribute read in the page (never stale, whatever the page re-renders meanwhile)."""
    value: str | None = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null",
        selector, name)
    return value


def click(driver: WebDriver, selector: str) -> None:
    """Click the element matching `selector` once it exists (found and clicked in one page call)."""
    wait(driver, lambda d: d.execute_script(
        "const e = document.querySelector(arguments[0]); if (e) e.click(); return !!e", selector),
        what=f"no {selector} to click")
