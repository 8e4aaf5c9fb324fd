"""The data browser in a real headless browser: Debian's chromium, driven through chromedriver by selenium.

The output comes from the demo pipeline (the demo config on the demo scenes, the shipped translator, images
embedded in the kept shards). A language page opened from ``file://`` shows the sampled rows, its thumbnails
load, the status filter leaves only rejected rows visible, nothing is fetched from anywhere but the site's
folder, and a screenshot is taken. `make test` installs chromium and chromium-driver where apt-get is available;
elsewhere the test skips, saying so."""

import json
import os
import shutil

import pytest
import yaml

from pipeline.browse.site import build_site
from pipeline.build import build_dataset
from pipeline.config import load_config
from pipeline.demo import DEMO_CONFIG

SAMPLE = 6  # rows per page: below the busiest pages' row counts, so the sample is a real sample
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Debian's chromium as root in a sandboxed machine: no sandbox, no GPU, and none of its own network traffic
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000")
NO_BROWSER = ("no chromium and chromedriver found on PATH: `make test` installs Debian's chromium and "
              "chromium-driver with apt-get (as root or with sudo -n); install them to run this test")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip(NO_BROWSER)
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the `test` extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory, demo_root):
    root = tmp_path_factory.mktemp("browse-demo")
    (root / "demo-data").symlink_to(demo_root, target_is_directory=True)  # where the demo config's paths point
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["output"]["images"] = "embed"  # kept rows' thumbnails from the shards, rejected rows' from the files
    (root / "demo.yaml").write_text(yaml.safe_dump(config))
    build_dataset(load_config(root / "demo.yaml"))
    out = root / "dataset"
    return out, build_site(out, sample=SAMPLE)


def _mixed_page(site) -> dict:
    """The page whose shown rows are the most evenly kept and rejected (the site records them per page)."""
    pages = json.loads((site / "site.json").read_text())["pages"]
    page = max(pages, key=lambda p: (min(p["shown_status"].get("kept", 0), p["shown_status"].get("rejected", 0)),
                                     p["rows"]))
    assert len(page["shown_status"]) == 2, f"no page of the demo output shows kept and rejected rows: {pages}"
    return page


def test_a_page_opens_from_disk_and_its_rows_images_and_filters_work(browser, demo_site, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    out, report = demo_site
    page = _mixed_page(report.site_dir)
    browser.get((report.site_dir / page["path"]).as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.row")
    assert len(rows) == page["shown"] == min(SAMPLE, page["rows"])
    statuses = [row.get_attribute("data-status") for row in rows]
    assert {s: statuses.count(s) for s in set(statuses)} == page["shown_status"]

    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "return Array.from(document.images).every((image) => image.complete)"))
    widths = browser.execute_script("return Array.from(document.images).map((image) => image.naturalWidth)")
    assert len(widths) == len(rows) and all(width > 0 for width in widths)  # every thumbnail loaded

    assert browser.find_element(By.ID, "visible").text == str(len(rows))  # the script ran
    Select(browser.find_element(By.CSS_SELECTOR, 'select[data-filter="status"]')).select_by_value("rejected")
    visible = [row for row in rows if row.is_displayed()]
    assert [row.get_attribute("data-status") for row in visible] == [s for s in statuses if s == "rejected"]
    assert browser.find_element(By.ID, "visible").text == str(len(visible))

    shot = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot))
    if os.environ.get("MBLIP_BROWSE_SCREENSHOT"):  # a copy to look at
        shutil.copyfile(shot, os.environ["MBLIP_BROWSE_SCREENSHOT"])
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and shot.stat().st_size > 1000

    # everything the page loads is in the site's folder, and nothing was refused (CSP) or failed to load
    loaded = browser.execute_script(
        "return Array.from(document.querySelectorAll('[src], link[href]')).map((e) => e.src || e.href)")
    assert len(loaded) == len(rows) + 2  # the thumbnails, the script and the style sheet
    assert all(url.startswith(report.site_dir.as_uri() + "/") for url in loaded), loaded
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_the_index_filters_pages_by_task_and_links_preset_filters(browser, demo_site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _, report = demo_site
    browser.get(report.index.as_uri())
    pages = browser.find_elements(By.CSS_SELECTOR, "tr.row")
    assert len(pages) == report.pages
    Select(browser.find_element(By.CSS_SELECTOR, 'select[data-filter="task"]')).select_by_value("vqa")
    visible = [row for row in pages if row.is_displayed()]
    assert visible and len(visible) < len(pages) and {r.get_attribute("data-task") for r in visible} == {"vqa"}

    # the index's "rejected" count opens its page with the status filter set
    page = _mixed_page(report.site_dir)
    browser.get((report.site_dir / page["path"]).as_uri() + "#status=rejected")
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.row")
    shown = [row.get_attribute("data-status") for row in rows if row.is_displayed()]
    assert shown and set(shown) == {"rejected"} and len(shown) < len(rows)
