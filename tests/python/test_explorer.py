"""The explorer page every node serves at `/`, in a real headless Chromium driven over WebDriver
against a real testnet: it loads from the node alone, shows the validators and each subnet's
neurons and weights, and its head advances while it is open."""

import json
import os
import re
import pathlib

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from conftest import wait_for

CHROMIUM = os.environ.get("MESHMIND_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MESHMIND_CHROMEDRIVER", "/usr/bin/chromedriver")


@pytest.fixture
def browser(tmp_path):
    for needed in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(needed):
            pytest.fail(f"{needed} is missing: scripts/install-deps.sh installs chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Headless, and nothing that reaches for the internet (this machine has none).
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,2200",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def number(text: str):
    return int(text) if text.strip().isdigit() else None


def test_the_explorer_shows_the_network_live(network, browser):
    net = network("--validators", "2", "--miners", "2", "--epoch-ms", "1000")
    validators = {
        json.loads((net.data_dir(name) / "hotkey.json").read_text())["public_key"] for name in ("v0", "v1")
    }
    origin = net.api("v0")
    browser.get(origin + "/")
    assert browser.title == "meshmind explorer"

    def listed():
        rows = browser.find_elements(By.CSS_SELECTOR, "#validators tbody tr")
        return {r.get_attribute("data-hotkey") for r in rows} if len(rows) >= 2 else None

    assert wait_for("the validators listed", listed) == validators
    head = lambda: number(browser.find_element(By.ID, "head").text)  # noqa: E731
    first = wait_for("a finalized head on the page", head)
    later = wait_for("the head advancing while the page is open", lambda: (h := head()) is not None and h >= first + 2 and h)
    # The page re-rendered for each new head it saw, without being reloaded.
    heads = [int(h) for h in browser.find_element(By.TAG_NAME, "body").get_attribute("data-heads").split(",")]
    assert heads == sorted(heads) and len(heads) >= 3, heads

    # Subnet 1: its neurons (two validators, two miners), and the weights heatmap of the latest
    # snapshot with a cell per (validator, miner).
    neurons = wait_for(
        "subnet 1's neurons",
        lambda: (rows := browser.find_elements(By.CSS_SELECTOR, '.subnet[data-subnet="1"] table.neurons tbody tr'))
        and len(rows) >= 4
        and rows,
    )
    cells = wait_for("the weights heatmap", lambda: browser.find_elements(By.CSS_SELECTOR, '.heatmap[data-subnet="1"] td.cell'))
    assert len(cells) >= 2
    # The last-vote column names an epoch for both validators.
    votes = [r.find_elements(By.TAG_NAME, "td")[4].text for r in browser.find_elements(By.CSS_SELECTOR, "#validators tbody tr")]
    assert all(v.startswith("epoch ") for v in votes), votes
    # The take column shows each validator's take (the network's default, 18 %).
    takes = [r.find_elements(By.TAG_NAME, "td")[6].text for r in browser.find_elements(By.CSS_SELECTOR, "#validators tbody tr")]
    assert takes == ["18 %"] * len(validators), takes
    # Each subnet's heading gives its share of emission and the rules Yuma runs under there.
    heading = browser.find_element(By.CSS_SELECTOR, '.subnet[data-subnet="1"] h3').text
    assert re.search(r"emission share \d+\.\d\d %", heading) and "tempo 1 · kappa 32767" in heading, heading
    # The finality chart has a point per epoch finalized on the node.
    points = int(browser.find_element(By.ID, "finality-chart").get_attribute("data-points") or 0)
    assert points >= 2
    assert browser.find_element(By.ID, "live").text == "live"

    # Everything came from the node itself, and the browser logged no error (a CSP violation, a
    # failed request or a script error would be one).
    origins = set(browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)"
    ))
    assert origins <= {origin}, origins
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors

    shot = os.environ.get("MESHMIND_EXPLORER_SCREENSHOT")
    if shot:
        browser.save_screenshot(str(pathlib.Path(shot)))
    print(f"explorer: {len(validators)} validators, {len(neurons)} neurons on subnet 1, {len(cells)} heatmap cells, "
          f"head {first} -> {later} while open, {points} finality points")
