"""The browser harness itself: chromium reaches a live server, and the page watch catches what it must."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, Route

from tests.support.browser import PageWatch
from tests.support.server import LiveServer


def html_page(body: str, *, csp: str | None = None) -> str:
    head = f'<meta http-equiv="Content-Security-Policy" content="{csp}">' if csp else ""
    return "data:text/html," + quote(f"<!doctype html><html><head>{head}</head><body>{body}</body></html>")


def test_chromium_opens_the_live_server(watched_page: Page, console_server: LiveServer) -> None:
    response = watched_page.goto(f"{console_server.url}/healthz")
    assert response is not None
    assert response.status == 200
    assert json.loads(watched_page.locator("body").inner_text())["status"] == "ready"


def test_a_client_error_is_collected_and_fails_nothing(
    watched_page: Page, page_watch: PageWatch, console_server: LiveServer
) -> None:
    response = watched_page.goto(f"{console_server.url}/no-such-page")
    assert response is not None
    assert response.status == 404
    page_watch.check()
    assert any(line.startswith("404 GET ") for line in page_watch.expected_errors)


def test_a_console_error_fails_the_watch(page: Page) -> None:
    watch = PageWatch(page).attach()
    page.goto(html_page("<script>console.error('something broke')</script>"))
    with pytest.raises(AssertionError, match="console error: something broke"):
        watch.check()
    watch.check()  # reported once


def test_a_csp_violation_fails_the_watch(page: Page) -> None:
    watch = PageWatch(page).attach()
    page.goto(html_page("<script>document.title = 'ran'</script>", csp="script-src 'self'"))
    with pytest.raises(AssertionError, match="Content Security Policy"):
        watch.check()
    assert page.title() != "ran"


def test_an_uncaught_exception_fails_the_watch(page: Page) -> None:
    watch = PageWatch(page).attach()
    page.goto(html_page("<script>throw new TypeError('no such thing')</script>"))
    with pytest.raises(AssertionError, match="page error: TypeError: no such thing"):
        watch.check()


def test_a_failed_request_fails_the_watch(page: Page) -> None:
    watch = PageWatch(page).attach()
    page.goto(html_page('<img src="http://127.0.0.1:9/unreachable.png" alt="">'))
    page.wait_for_load_state("load")
    with pytest.raises(
        AssertionError, match=re.escape("request failed: GET http://127.0.0.1:9/unreachable.png")
    ):
        watch.check()


def test_a_server_error_fails_the_watch(page: Page) -> None:
    def broken(route: Route) -> None:
        route.fulfill(status=500, content_type="text/plain", body="down")

    page.route("http://console.test/**", broken)
    watch = PageWatch(page).attach()
    page.goto("http://console.test/page")
    with pytest.raises(AssertionError, match=re.escape("server error: 500 GET http://console.test/page")):
        watch.check()


def test_a_download_is_not_a_failed_request(watched_page: Page) -> None:
    def serve(route: Route) -> None:
        if route.request.url.endswith("/key.pem"):
            route.fulfill(
                headers={"Content-Disposition": 'attachment; filename="key.pem"'},
                content_type="application/x-pem-file",
                body="-----BEGIN PUBLIC KEY-----\n",
            )
        else:
            route.fulfill(content_type="text/html", body='<a href="/key.pem">Download</a>')

    watched_page.route("http://console.test/**", serve)
    watched_page.goto("http://console.test/page")
    with watched_page.expect_download() as download:
        watched_page.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == "key.pem"
