"""Helpers for the console's browser tests: a watch on what goes wrong in a page, and signing in.

The watch collects what a user would never see but a broken page shows: console errors (a CSP
violation is one), uncaught page errors, failed requests and server errors (status >= 500). A
download's request, which Chromium aborts once it becomes one, is not a failure. A 4xx answer is
often the point of a test (a refusal), so it is collected apart and fails nothing, and the console
errors the browser and htmx log for it are counted with it.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field

from playwright.sync_api import ConsoleMessage, Error, Page, Request, Response, expect

from tests.support.server import LiveServer

# What Chromium and htmx log for a response with a 4xx status: counted as that response, not as an error.
_CLIENT_ERROR_LOGS = (
    re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d\b"),
    re.compile(r"^Response Status Error Code 4\d\d from "),
)

SIGN_IN_WORDS = {
    "en": {"name": "Sign-in Name", "password": "Password", "submit": "Sign In", "language": "English"},
    "zh": {"name": "登录名称", "password": "密码", "submit": "登录", "language": "中文"},
}


@dataclass
class PageWatch:
    """Everything that went wrong in one page; `check()` raises if anything did."""

    page: Page
    problems: list[str] = field(default_factory=list)
    expected_errors: list[str] = field(default_factory=list)  # 4xx answers and their console lines
    downloads: list[str] = field(default_factory=list)  # URLs answered as attachments
    _aborted: list[str] = field(default_factory=list)  # requests cut off: a download's, or a problem
    _reported: int = 0

    def attach(self) -> PageWatch:
        self.page.on("console", self._on_console)
        self.page.on("pageerror", self._on_page_error)
        self.page.on("requestfailed", self._on_request_failed)
        self.page.on("response", self._on_response)
        self.page.on("download", lambda download: self.downloads.append(download.url))
        return self

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        text = message.text
        where = message.location.get("url", "")
        if any(pattern.search(text) for pattern in _CLIENT_ERROR_LOGS):
            self.expected_errors.append(f"console: {text}")
        else:
            self.problems.append(f"console error: {text} (at {where})")

    def _on_page_error(self, error: Error) -> None:
        self.problems.append(f"page error: {error.name}: {error.message}")

    def _on_request_failed(self, request: Request) -> None:
        if request.failure == "net::ERR_ABORTED":
            # Chromium aborts the request of a download once it becomes one; which it was is known
            # when the events are all in (`check`).
            self._aborted.append(request.url)
            return
        self.problems.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _on_response(self, response: Response) -> None:
        line = f"{response.status} {response.request.method} {response.url}"
        if response.headers.get("content-disposition", "").lower().startswith("attachment"):
            self.downloads.append(response.url)
        if response.status >= 500:
            self.problems.append(f"server error: {line}")
        elif response.status >= 400:
            self.expected_errors.append(line)

    def check(self) -> None:
        """Raise AssertionError naming every problem not reported yet."""
        if not self.page.is_closed():
            # One round trip to the browser: every event it sent before answering is dispatched by then.
            with contextlib.suppress(Error):  # navigating or closing: the events that came are in
                self.page.evaluate("0")
        for url in self._aborted:
            if url not in self.downloads:
                self.problems.append(f"request failed: {url}: net::ERR_ABORTED")
        self._aborted.clear()
        fresh = self.problems[self._reported :]
        self._reported = len(self.problems)
        if fresh:
            raise AssertionError("the page went wrong:\n  " + "\n  ".join(fresh))


def sign_in(page: Page, server: LiveServer, name: str, password: str, lang: str = "en") -> None:
    """Sign in through the console's sign-in form as a user does, in `lang` ("en" or "zh").

    Chooses the language with the page's own language switch when the page comes in the other one,
    fills the fields by their labels and clicks the button by its name, then waits for the next page.
    Asserts nothing about the outcome: a test of a refused sign-in uses this too.
    """
    words = SIGN_IN_WORDS[lang]
    page.goto(f"{server.url}/console/signin")
    page_lang = page.locator("html").get_attribute("lang") or ""
    if not page_lang.startswith(lang):
        page.get_by_role("link", name=words["language"], exact=True).click()
        expect(page.locator("html")).to_have_attribute("lang", re.compile(f"^{lang}"))
    page.get_by_label(words["name"], exact=True).fill(name)
    page.get_by_label(words["password"], exact=True).fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name=words["submit"], exact=True).click()
