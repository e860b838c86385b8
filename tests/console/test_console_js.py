"""console.js in real Chromium under the console's CSP: each data-attribute behaviour on a page of its own.

The page and the static files are answered by a route (the console's pages are tested against the
live server in the other modules); the stylesheet and the script are the shipped files, and the page
is served with a CSP as strict as the console's, so an inline script or style they needed would fail
the watched page.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Dialog, Page, Route, expect

from tests.support.browser import PageWatch

STATIC = Path(__file__).resolve().parents[2] / "src" / "openkms" / "console" / "static"
ORIGIN = "http://localhost:9"  # never contacted: every request to it is answered by the route
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

FORM_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>console.js</title>
<meta name="htmx-config" content='{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}'>
<link rel="stylesheet" href="/static/console.css">
<script src="/static/htmx.min.js" defer></script>
<script src="/static/console.js" defer></script></head>
<body><main>
<button type="button" data-open-dialog="dlg">Open Dialog</button>
<dialog id="dlg" aria-labelledby="dlg-title"><header><h2 id="dlg-title">A Dialog</h2></header>
  <div class="dialog-body"><p>Inside</p></div>
  <footer><button type="button" data-close-dialog>Close</button></footer></dialog>

<pre class="pem" id="secret">SECRET-TEXT-1234</pre>
<button type="button" data-copy="secret" data-copied="Copied">Copy</button>

<form method="get" action="/result" id="create">
  <fieldset><legend>Key Type</legend>
    <label class="choice"><input type="radio" name="key_type" value="Symmetric" checked> Symmetric Key</label>
    <label class="choice"><input type="radio" name="key_type" value="Asymmetric"> Asymmetric Key</label>
  </fieldset>
  <div class="field" data-show-when="key_type=Symmetric" id="rotation">
    <label for="period">Rotation Period</label><input id="period" name="period" required>
  </div>
  <div class="field" data-show-when="key_type=Asymmetric|Both" id="usage" hidden>
    <label for="usage-input">Key Usage</label><input id="usage-input" name="usage" value="SIGN/VERIFY">
  </div>
  <div data-max-tags="2" data-msg-required="请输入标签键。" data-msg-length="最多128个字符。"
       data-msg-chars="字符不合法" data-msg-reserved="保留前缀" data-msg-too-many="最多2个标签">
    <div data-tag-rows>
      <div class="tag-row" data-tag-row>
        <label for="tk0">Tag Key</label><input id="tk0" name="tag_key" data-tag-key>
        <label for="tv0">Tag Value</label><input id="tv0" name="tag_value" data-tag-value>
        <p class="field-error" data-tag-error hidden></p>
      </div>
    </div>
    <template data-tag-template>
      <div class="tag-row" data-tag-row>
        <input name="tag_key" aria-label="Tag Key" data-tag-key>
        <input name="tag_value" aria-label="Tag Value" data-tag-value>
        <button type="button" data-remove-tag>Remove Tag</button>
      </div>
    </template>
    <button type="button" data-add-tag>Add Tag</button>
  </div>
  <button type="submit" class="btn-primary">OK</button>
</form>

<form method="get" action="/result" class="region">
  <label for="region">Region</label>
  <select id="region" name="region" data-autosubmit>
    <option value="cn-hangzhou" selected>cn-hangzhou</option><option value="cn-shanghai">cn-shanghai</option>
  </select>
</form>

<form method="get" action="/result" data-confirm="Really delete?">
  <input type="hidden" name="deleted" value="yes"><button type="submit" class="btn-danger">Delete</button>
</form>
</main></body></html>
"""


def serve(route: Route) -> None:
    path = urlsplit(route.request.url).path
    if path.startswith("/static/"):
        file = STATIC / path.removeprefix("/static/")
        kind = "text/css" if file.suffix == ".css" else "text/javascript"
        route.fulfill(body=file.read_bytes(), content_type=kind)
    elif path == "/form":
        route.fulfill(
            body=FORM_PAGE, content_type="text/html; charset=utf-8", headers={"Content-Security-Policy": CSP}
        )
    elif path == "/result":
        route.fulfill(body="<!doctype html><title>result</title><p>done</p>", content_type="text/html")
    else:
        route.fulfill(status=404, body="")


@pytest.fixture
def form_page(watched_page: Page, context: BrowserContext) -> Page:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=ORIGIN)
    watched_page.route(f"{ORIGIN}/**", serve)
    watched_page.goto(f"{ORIGIN}/form")
    watched_page.wait_for_load_state("load")  # the deferred scripts have run
    return watched_page


def test_a_dialog_opens_and_closes(form_page: Page) -> None:
    dialog = form_page.get_by_role("dialog", name="A Dialog")
    expect(dialog).to_be_hidden()
    form_page.get_by_role("button", name="Open Dialog").click()
    expect(dialog).to_be_visible()
    assert form_page.evaluate("document.getElementById('dlg').matches(':modal')")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()


def test_copy_puts_the_text_on_the_clipboard_and_says_so(form_page: Page) -> None:
    button = form_page.get_by_role("button", name="Copy")
    button.click()
    expect(form_page.get_by_role("button", name="Copied")).to_be_visible()
    assert form_page.evaluate("navigator.clipboard.readText()") == "SECRET-TEXT-1234"
    expect(form_page.get_by_role("button", name="Copy", exact=True)).to_be_visible()  # back after 2 s


def test_sections_follow_the_control_they_depend_on(form_page: Page) -> None:
    rotation, usage = form_page.locator("#rotation"), form_page.locator("#usage")
    expect(rotation).to_be_visible()
    expect(usage).to_be_hidden()
    expect(form_page.locator("#usage-input")).to_be_disabled()

    form_page.get_by_label("Asymmetric Key").check()
    expect(rotation).to_be_hidden()
    expect(form_page.locator("#period")).to_be_disabled()
    expect(usage).to_be_visible()
    expect(form_page.locator("#usage-input")).to_be_enabled()

    # The hidden required field neither blocks the form nor is sent.
    form_page.get_by_role("button", name="OK").click()
    form_page.wait_for_url("**/result?*")
    assert "period=" not in form_page.url
    assert "usage=SIGN%2FVERIFY" in form_page.url


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("aliyun-owner", "x", "保留前缀"),
        ("ACS:thing", "x", "保留前缀"),
        ("bad#key", "x", "字符不合法"),
        ("k" * 129, "x", "最多128个字符。"),
        ("", "lonely value", "请输入标签键。"),
        ("team", "中文", "字符不合法"),
    ],
)
def test_a_tag_breaking_a_rule_is_refused_as_you_type(
    form_page: Page, key: str, value: str, message: str
) -> None:
    key_input, value_input = form_page.locator("#tk0"), form_page.locator("#tv0")
    key_input.fill(key)
    value_input.fill(value)
    invalid = key_input if key_input.evaluate("e => !e.checkValidity()") else value_input
    assert invalid.evaluate("e => e.validationMessage") == message
    expect(invalid).to_have_attribute("aria-invalid", "true")
    expect(form_page.locator("[data-tag-error]")).to_have_text(message)


def test_a_tag_within_the_rules_is_accepted(form_page: Page) -> None:
    form_page.locator("#tk0").fill("aliyun-x")
    form_page.locator("#tk0").fill("Team/A_b-c.d+e=f:g@h \\ " + "k" * 100)
    form_page.locator("#tv0").fill("k" * 128)
    assert form_page.locator("#tk0").evaluate("e => e.checkValidity()")
    assert form_page.locator("#tv0").evaluate("e => e.checkValidity()")
    expect(form_page.locator("#tk0")).not_to_have_attribute("aria-invalid", "true")
    expect(form_page.locator("[data-tag-error]")).to_be_hidden()


def test_tag_rows_stop_at_the_limit(form_page: Page) -> None:
    add = form_page.get_by_role("button", name="Add Tag")
    add.click()
    expect(form_page.locator("[data-tag-row]")).to_have_count(2)
    expect(add).to_be_disabled()
    form_page.get_by_role("button", name="Remove Tag").click()
    expect(form_page.locator("[data-tag-row]")).to_have_count(1)
    expect(add).to_be_enabled()


def test_a_select_submits_its_form_on_change(form_page: Page) -> None:
    form_page.get_by_label("Region").select_option("cn-shanghai")
    form_page.wait_for_url("**/result?region=cn-shanghai")


def test_a_confirmed_form_asks_first(form_page: Page) -> None:
    asked: list[str] = []

    def answer(accept: bool) -> object:
        def handle(dialog: Dialog) -> None:
            asked.append(dialog.message)
            if accept:
                dialog.accept()
            else:
                dialog.dismiss()

        return handle

    form_page.once("dialog", answer(False))
    form_page.get_by_role("button", name="Delete").click()
    expect(form_page).to_have_url(f"{ORIGIN}/form")
    form_page.once("dialog", answer(True))
    form_page.get_by_role("button", name="Delete").click()
    form_page.wait_for_url("**/result?deleted=yes")
    assert asked == ["Really delete?", "Really delete?"]


def test_htmx_needs_its_indicator_styles_off_under_the_csp(page: Page) -> None:
    """Why base.html carries the htmx-config meta: without it htmx injects a <style> the CSP refuses."""
    bare = FORM_PAGE.replace('<meta name="htmx-config"', '<meta name="not-htmx-config"')
    page.route(f"{ORIGIN}/**", serve)
    page.route(
        f"{ORIGIN}/bare",
        lambda route: route.fulfill(
            body=bare, content_type="text/html", headers={"Content-Security-Policy": CSP}
        ),
    )
    watch = PageWatch(page).attach()
    page.goto(f"{ORIGIN}/bare")
    page.wait_for_load_state("load")
    with pytest.raises(AssertionError, match="inline style violates"):
        watch.check()
