import time, uuid
from playwright.sync_api import Page
from tests.e2e.browser.conftest import create_integration, SCREENSHOTS
from tests.e2e.browser.pages.example_page import ConsentPage, HostedConnectPage
from tests.e2e.browser.test_hosted_page import hosted, _open_session  # noqa

def test_probe_closed(page: Page, hosted):
    c = HostedConnectPage(page, hosted.link).open()
    page.screenshot(path="/tmp/probe-list.png", full_page=True)
    c.choose(hosted.oauth_integration)
    popup = c.continue_in_popup()
    ConsentPage(popup).wait()
    popup.close()
    t = time.monotonic()
    page.wait_for_selector('#status[data-outcome="error"]', timeout=60_000)
    print("closed detected after", time.monotonic() - t, page.inner_text("#status"))

def test_probe_bad(page: Page, example_app):
    logs = []
    page.on("console", lambda m: logs.append(m.text))
    page.on("pageerror", lambda e: logs.append("PAGEERROR " + str(e)))
    page.goto(f"{example_app.stack.gateway}/connect/cst_nope")
    page.wait_for_timeout(1500)
    page.screenshot(path="/tmp/probe-unknown.png", full_page=True)
    r = page.goto(f"{example_app.stack.gateway}/connect/%ZZ")
    print("status", r.status)
    page.wait_for_timeout(1500)
    page.screenshot(path="/tmp/probe-malformed.png", full_page=True)
    print(page.inner_text("body"))
    print(logs)

def test_probe_tenant(page: Page, example_app, consenting_provider):
    logs = []
    page.on("console", lambda m: logs.append(m.text))
    stack = example_app.stack
    iid = create_integration(stack, "mock-tenant", consenting_provider.add_client())
    link = _open_session(stack, {"id": "x"}, [iid])["connect_link"]
    c = HostedConnectPage(page, link).open()
    c.fill("subdomain", "Bad Value!", group="connection_config")
    print("valid?", page.eval_on_selector('#fields input', "e => [e.checkValidity(), e.pattern]"))
    with page.expect_popup(timeout=3000) as p:
        c.submit()
    print("popup url", p.value.url)
    page.wait_for_timeout(2000)
    print(page.inner_text("body"))
    print(logs)

def test_probe_sametab(page: Page, hosted):
    page.add_init_script("window.open = function () { return null; };")
    c = HostedConnectPage(page, hosted.link).open().choose(hosted.oauth_integration)
    c.submit()
    ConsentPage(page).allow()
    page.wait_for_timeout(1500)
    page.screenshot(path="/tmp/probe-sametab.png", full_page=True)
    print(page.inner_text("body"))
