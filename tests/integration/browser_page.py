"""Headless Chromium (Selenium) on the browser console's page: the driver fixture and what a
test reads or does there. Shared by tests/integration/test_web_browser.py (the sim) and
tests/xen_testbed/test_xcg_web.py (real Xen); it imports neither suite's conftest."""

import os

import pytest

selenium = pytest.importorskip("selenium", reason="needs python3-selenium (./dev installs it)")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMEDRIVER = "/usr/bin/chromedriver"
PAGE_TIMEOUT = 10

if not os.access(CHROMEDRIVER, os.X_OK):
    pytest.skip("needs chromium-driver (./dev installs it)", allow_module_level=True)


@pytest.fixture
def browser(tmp_path):
    profile = tmp_path / "chromium"
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", f"--user-data-dir={profile}",
                "--window-size=1200,800"):
        options.add_argument(arg)
    options.accept_insecure_certs = True  # the gateway's self-signed pair
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait(driver, condition, what, timeout=PAGE_TIMEOUT):
    try:
        return WebDriverWait(driver, timeout).until(lambda _: condition())
    except selenium.common.exceptions.TimeoutException:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; terminal:\n"
                             f"{rows(driver)}\nstatus: {text(driver, 'status')!r}") from None


def element(driver, selector):
    return driver.find_element(By.CSS_SELECTOR, selector)


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def rows(driver):
    return element(driver, ".xterm-rows").text


def buttons(driver):
    return [b.get_attribute("data-action") for b in driver.find_elements(By.CSS_SELECTOR, "#buttons button")]


def open_console(driver, link, domain, timeout=PAGE_TIMEOUT):
    """Loads the page from a blank one (a link differing only in its fragment would not
    reload) and waits until the session said hello."""
    driver.get("about:blank")
    driver.get(link)
    wait(driver, lambda: text(driver, "domain") == domain, "the session's hello", timeout)


def type_keys(driver, keys):
    element(driver, ".xterm-helper-textarea").send_keys(keys)


def closed_reason(driver, timeout=PAGE_TIMEOUT):
    wait(driver, lambda: element(driver, "#closed").is_displayed(), "the closed overlay", timeout)
    return text(driver, "closed-reason")


def severe_logs(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def confirm_action(driver, action):
    """Clicks the action's button, then Yes in the confirmation dialog; returns its text."""
    element(driver, f"button[data-action={action}]").click()
    wait(driver, lambda: element(driver, "#confirm").is_displayed(), "the confirmation dialog")
    question = text(driver, "confirm-text")
    element(driver, "#confirm-yes").click()
    return question
