"""The review console in a real browser (Debian chromium through chromedriver), end to end:
worker, sink and console as processes on the embedded broker and real PostgreSQL.

Screenshots of every page go to $PAYEE_STREAM_SCREENSHOTS (default: the test's tmp dir).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path

import asyncpg
import pytest

from streams.db import connect
from tests.conftest import publish_values, read_topic
from tests.review_support import AMBIGUOUS_NAME, ChildProcess, prepare_database, review_settings

pytestmark = pytest.mark.integration

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
PASSWORD = "correct horse battery"


def payee_value(record_id: str, name: str, amount: str, state: str = "AK") -> tuple[bytes, bytes]:
    record = {"source_system": "ap-east", "source_record_id": record_id, "payee_name": name,
              "state": state, "amount": amount, "currency": "USD"}
    return f"ap-east:{record_id}".encode(), json.dumps(record).encode()


async def _fetch(settings, sql: str, *args):
    conn = await connect(settings)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def wait_for_rows(settings, sql: str, count: int, timeout_s: float = 60) -> list[asyncpg.Record]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = asyncio.run(_fetch(settings, sql))
        if len(rows) >= count:
            return rows
        time.sleep(0.5)
    raise TimeoutError(f"fewer than {count} rows: {sql}")


def wait_in_force(settings, decision_id: str, timeout_s: float = 10) -> float:
    """Poll the worker until it applies the decision; returns the (wall-clock) time it did."""
    import urllib.request

    url = f"http://{settings.web_host}:{settings.web_port}/decisions/{decision_id}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=2) as response:
            if json.loads(response.read())["in_force"]:
                return time.time()
        time.sleep(0.02)
    raise TimeoutError("decision not in force on the worker")


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("chromium and chromium-driver are needed: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


@pytest.mark.timeout(240)
def test_a_reviewer_confirms_a_candidate_and_the_next_record_is_matched_by_the_decision(
    loaded_settings, pg_schema, start_worker, browser, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    shots = Path(os.environ.get("PAYEE_STREAM_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    settings = review_settings(loaded_settings, pg_schema)
    asyncio.run(prepare_database(settings, [("ana", "reviewer", PASSWORD)]))
    worker = start_worker(settings)
    sink = ChildProcess(settings, "sink", tmp_path / "sink.log")
    console = ChildProcess(settings, "review", tmp_path / "console.log")
    try:
        base = f"http://{settings.review_host}:{settings.review_port}"
        console.wait_http(f"{base}/health")
        worker.wait_ready(90)
        assert publish_values(settings, [
            payee_value("small-1", "KNIGHTS OF COLUMBUS", "12.50"),
            payee_value("big-1", AMBIGUOUS_NAME, "25000"),
            payee_value("mid-1", AMBIGUOUS_NAME, "900", state="TX"),
        ]) == 3
        wait_for_rows(settings, "SELECT 1 FROM payee_results", 3)
        wait_for_rows(settings, "SELECT 1 FROM review_items WHERE status = 'open'", 2)
        wait_for_rows(settings, "SELECT 1 FROM supplier_directory", 100)

        browser.get(base + "/")
        assert "/login" in browser.current_url
        browser.save_screenshot(str(shots / "1-sign-in.png"))
        browser.find_element(By.NAME, "username").send_keys("ana")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

        rows = browser.find_elements(By.CSS_SELECTOR, "#queue tbody tr[data-href]")
        assert len(rows) >= 2
        assert "25,000.00" in rows[0].text  # highest priority first: the large ambiguous payment
        browser.save_screenshot(str(shots / "2-queue.png"))
        browser.find_element(By.TAG_NAME, "body").send_keys("o")  # open the selected (first) row
        assert AMBIGUOUS_NAME in browser.find_element(By.CSS_SELECTOR, "h1.payee").text
        assert "ap-east:big-1" in browser.current_url.replace("%3A", ":")
        browser.save_screenshot(str(shots / "3-item.png"))
        candidate = browser.find_element(By.CSS_SELECTOR, "button[data-key='1']")
        chosen = candidate.get_attribute("value").split(":", 1)[1]
        browser.find_element(By.ID, "note").send_keys("post 22 is the one we pay")
        browser.find_element(By.TAG_NAME, "body").click()
        browser.find_element(By.TAG_NAME, "body").send_keys("1")  # confirm candidate 1
        assert "Decision saved" in browser.find_element(By.CSS_SELECTOR, ".flash").text
        [decision] = asyncio.run(_fetch(settings, "SELECT * FROM review_decisions"))
        # From the decision's time (taken before it is stored and published) to the worker applying it.
        propagation_s = wait_in_force(worker.settings, str(decision["decision_id"])) - decision["decided_at"].timestamp()
        print(f"decision in force on the worker {propagation_s:.3f} s after it was taken")
        assert propagation_s < 2.0
        browser.save_screenshot(str(shots / "4-after-decision.png"))
        # The next item is open; a reviewer searches the supplier directory ("s" focuses the box).
        browser.find_element(By.TAG_NAME, "body").send_keys("s")
        browser.switch_to.active_element.send_keys("knights columbus\n")
        found = browser.find_elements(By.CSS_SELECTOR, "button[value^='choose:']")
        assert len(found) >= 2
        browser.save_screenshot(str(shots / "4b-supplier-search.png"))

        assert (decision["reviewer"], decision["outcome"], decision["supplier_id"]) == ("ana", "alias", chosen)
        assert decision["note"] == "post 22 is the one we pay" and decision["items_resolved"] == 1
        items = {row["record_key"]: row for row in asyncio.run(_fetch(settings, "SELECT * FROM review_items"))}
        assert items["ap-east:big-1"]["status"] == "resolved"
        assert items["ap-east:small-1"]["status"] == "open"  # another payee

        browser.get(base + "/decisions")
        assert "ana" in browser.find_element(By.CSS_SELECTOR, "table.history").text
        browser.save_screenshot(str(shots / "5-history.png"))

        # A new record of the same payee, same source and place: decided by the reviewer.
        publish_values(settings, [payee_value("big-2", AMBIGUOUS_NAME.lower(), "310")])
        results = read_topic(settings, settings.topic_enriched, expected=4, timeout_s=60, settle_s=0.5)
        [again] = [r for r in results if r["record_key"] == "ap-east:big-2"]
        assert again["match"]["method"] == "reviewer"
        assert again["match"]["decision_id"] == str(decision["decision_id"])
        assert (again["match"]["supplier_id"], again["status"]) == (chosen, "enriched")
    finally:
        console.stop()
        sink.stop()
