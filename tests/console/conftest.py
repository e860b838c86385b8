"""The console's browser tests: Debian's chromium driven by pytest-playwright against a live server.

No browser is downloaded (`playwright install` is never run): Playwright launches /usr/bin/chromium,
headless. Everything here is marked `browser`. A test that takes `watched_page` fails on any console
error (a CSP violation is one), page error, failed request or 5xx answer in its page.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from openkms.testing.softhsm import SoftHsmToken
from tests.support.browser import PageWatch
from tests.support.browser import sign_in as sign_in_helper
from tests.support.products import Caller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "console"

Screenshot = Callable[[Page, str], Path]


@pytest.hookimpl(trylast=True)  # after pytest's own grouping by fixture, which would move them again
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the browser tests, and run them after everything else: Playwright's sync API keeps an
    event loop running in the main thread for the rest of the session (its session-scoped
    fixtures), so a test after them could not call asyncio.run()."""
    here = Path(__file__).parent
    browser_items = [item for item in items if here in item.path.parents]
    for item in browser_items:
        item.add_marker(pytest.mark.browser)
    chosen = set(map(id, browser_items))
    items[:] = [item for item in items if id(item) not in chosen] + browser_items


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's chromium, headless; pytest-playwright's own options (e.g. --headed) still apply."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run installs it, so CI never skips)"
        )
    return {"headless": True, **browser_type_launch_args, "executable_path": str(CHROMIUM)}


@pytest.fixture(scope="session")
def base_url() -> None:
    """No base URL: tests name the live server's. (Replaces pytest-playwright's, which pytest deprecates.)"""
    return None


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory, softhsm: SoftHsmToken) -> Iterator[LiveServer]:
    """One live server (SQLite) for the whole browser suite; tests make their own keys and users (and
    hardware or external instances on the session's SoftHSM2 token)."""
    live = LiveServer(tmp_path_factory.mktemp("console-server") / "data", extra_env=softhsm.env())
    live.start()
    yield live
    live.stop()


@pytest.fixture
def page_watch(page: Page) -> PageWatch:
    """The watch on `page`: its `problems` and the 4xx answers it saw (`expected_errors`)."""
    return PageWatch(page).attach()


@pytest.fixture
def watched_page(page: Page, page_watch: PageWatch) -> Iterator[Page]:
    """A page whose test fails if anything went wrong in it (checked after the test, and at teardown)."""
    yield page
    page_watch.check()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Report a watched page's problems as the test's failure (not only as a teardown error)."""
    result = yield
    watch = getattr(item, "funcargs", {}).get("page_watch")
    if isinstance(watch, PageWatch) and "watched_page" in getattr(item, "fixturenames", ()):
        watch.check()
    return result


@pytest.fixture
def sign_in() -> Callable[..., None]:
    """`sign_in(page, server, name, password, lang="en")`: the console's sign-in form, as a user fills it."""
    return sign_in_helper


@pytest.fixture
def screenshot(tmp_path: Path) -> Screenshot:
    """`screenshot(page, name)`: a full-page PNG, into docs/console/ when OPENKMS_SCREENSHOTS=1."""

    def take(page: Page, name: str) -> Path:
        folder = SCREENSHOT_DIR if os.environ.get("OPENKMS_SCREENSHOTS") == "1" else tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@dataclass(frozen=True)
class ConsoleAccount:
    """Who a console test signs in as: the sign-in name and password, and the account's uid."""

    name: str
    password: str
    account_id: str


ROOT_PASSWORD = "Console-Root-Pass1"


@pytest.fixture(scope="session")
def console_root(console_server: LiveServer) -> ConsoleAccount:
    """The root of the server's account. The first start's password must be changed at the first
    sign-in (tests/console/test_sign_in.py shows it); the operator sets a known one instead, as
    `openkms account password` does."""
    creds = json.loads((console_server.data_dir / "root-credentials.json").read_text())
    env = {name: value for name, value in os.environ.items() if not name.startswith("OPENKMS_")}
    done = subprocess.run(
        [sys.executable, "-m", "openkms.cli", "account", "password", "--account-id", creds["AccountId"],
         "--password-stdin", "--data-dir", str(console_server.data_dir)],
        input=ROOT_PASSWORD + "\n", capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return ConsoleAccount(creds["ConsoleSignInName"], ROOT_PASSWORD, creds["AccountId"])


USER_PASSWORD = "Console-User-Pass1"


@pytest.fixture(scope="session")
def console_user(console_server: LiveServer, console_root: ConsoleAccount) -> Callable[..., ConsoleAccount]:
    """Make a RAM user that can sign in: `console_user(name, policies=("AliyunKMSFullAccess",),
    reset_required=False)`; the policies are system policy names or custom policy documents
    (dicts), attached to the user. Answers its sign-in name and password."""
    ram = Caller("ram", console_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)

    def make(
        name: str, policies: Sequence[str | dict[str, Any]] = (), reset_required: bool = False
    ) -> ConsoleAccount:
        ram.call("CreateUser", UserName=name)
        ram.call(
            "CreateLoginProfile",
            UserName=name,
            Password=USER_PASSWORD,
            PasswordResetRequired=reset_required,
        )
        for index, policy in enumerate(policies):
            if isinstance(policy, str):
                ram.call("AttachPolicyToUser", PolicyType="System", PolicyName=policy, UserName=name)
                continue
            policy_name = f"{name}-policy-{index}"
            ram.call("CreatePolicy", PolicyName=policy_name, PolicyDocument=json.dumps(policy))
            ram.call("AttachPolicyToUser", PolicyType="Custom", PolicyName=policy_name, UserName=name)
        return ConsoleAccount(f"{name}@{console_root.account_id}", USER_PASSWORD, console_root.account_id)

    return make
