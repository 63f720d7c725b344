"""The live dashboard in a real chromium: log in, send traffic through the proxy, watch the numbers move."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from balancer.services import ensure_demo_setup
from tests.proxy.backends import BackendFarm
from tests.proxy.support import ProxyProcess
from tests.support.actors import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
SHOP_HOST = "acme-corp.localhost"
pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                                      reason="chromium is not installed (bin/test installs it)")]


@pytest.fixture
def shop(owner, redis_server):
    """Tenant A serves its platform name (acme-corp.localhost: verified from the start) through a real proxy
    to a real backend."""
    farm = BackendFarm()
    backend = farm.start("shop-1")
    ensure_demo_setup(owner.tenant_id, host=SHOP_HOST, backend_addresses=[backend.address], pool_name="shop")
    proxy = ProxyProcess(redis_server.url).start()
    yield proxy, backend
    proxy.stop()
    farm.close()


def send_traffic(proxy: ProxyProcess, stop: threading.Event) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{proxy.port}", headers={"Host": SHOP_HOST}) as client:
        while not stop.is_set():
            client.get("/")
            time.sleep(0.01)


@pytest.fixture
def browser_page():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        yield page
        browser.close()


def test_it_shows_live_traffic_and_backend_health(asgi_server, browser_page, owner, shop):
    proxy, backend = shop
    page = browser_page
    page.goto(f"{asgi_server.http_url}/dashboard")
    page.fill("input[name=email]", owner.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
    expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
    expect(page.locator("#backends tbody tr")).to_have_count(1, timeout=10_000)
    expect(page.locator("#backends tbody")).to_contain_text(backend.address)
    assert page.locator("#requests-total").inner_text() == "0"

    stop = threading.Event()
    traffic = threading.Thread(target=send_traffic, args=(proxy, stop), daemon=True)
    traffic.start()
    try:
        expect(page.locator("#requests-total")).not_to_have_text("0", timeout=15_000)
        page.wait_for_function("parseFloat(document.getElementById('rps').textContent) > 0", timeout=15_000)
        page.wait_for_function("parseFloat(document.getElementById('s2xx').textContent) > 0", timeout=15_000)
    finally:
        stop.set()
        traffic.join(5)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    assert int(page.locator("#requests-total").inner_text()) > 0
