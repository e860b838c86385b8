"""Helpers of the Instances, RAM and Audit page tests: the catalog's words, a second main account
whose root can sign in, and a second browser context watched like `watched_page`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from playwright.sync_api import Browser, Page

from openkms.console.terms import translate
from tests.api.test_identities import create_account
from tests.support.browser import PageWatch
from tests.support.server import LiveServer

PASSWORD = "Console-Test-Passw0rd!"


def words(lang: str) -> Callable[[str], str]:
    """The console's text of a term in `lang`: what a user reads on the page."""
    return lambda term: translate(term, lang)


@dataclass(frozen=True)
class Account:
    account_id: str
    access_key_id: str
    access_key_secret: str
    password: str

    @property
    def sign_in_name(self) -> str:
        return self.account_id


def other_account(server: LiveServer) -> Account:
    """A new main account whose root has a console password (`openkms account password`)."""
    made = create_account(server)
    command = [
        sys.executable,
        "-m",
        "openkms.cli",
        "account",
        "password",
        "--account-id",
        made["AccountId"],
        "--password-stdin",
        "--data-dir",
        str(server.data_dir),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENKMS_")}
    done = subprocess.run(
        command, input=PASSWORD + "\n", capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return Account(made["AccountId"], made["AccessKeyId"], made["AccessKeySecret"], PASSWORD)


def second_page(browser: Browser) -> tuple[Page, PageWatch]:
    """A page in a browser context of its own (another person's browser), watched."""
    context = browser.new_context()
    page = context.new_page()
    return page, PageWatch(page).attach()
