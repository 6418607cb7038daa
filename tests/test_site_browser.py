"""The board's page in a real browser: Debian's headless Chromium through selenium and chromedriver,
opened from file:// with every network request sent to a dead proxy.

It loads, fetches nothing but file:/data: URLs, sorting by a header reorders the rows (checked
numerically), the per-bin plots are drawn, and the hostile display names are text (no alert, no
image, title unchanged). A screenshot goes to the test's tmp folder and to $MOSRM_SCREENSHOT_DIR
when set, for a person to look at. `make setup` installs chromium and chromium-driver.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from benchmark.leaderboard.build import build_board
from benchmark.leaderboard.site import TITLE
from tests.test_site import IMAGE, SCRIPT, hostile_results

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (dev extra)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="chromium and chromedriver not installed (make setup installs Debian's chromium, "
    "chromium-driver)",
)


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # tests run as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--proxy-server=127.0.0.1:9",  # any request that tried the network would fail here
        "--window-size=1280,2200",  # a laptop: the board must fit it without sideways scrolling
        "--hide-scrollbars",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory):
    base = tmp_path_factory.mktemp("browser")
    build_board(hostile_results(base / "results"), base / "out")
    browser.get((base / "out" / "site" / "index.html").as_uri())
    return browser, base


def _column(driver, table, header: str) -> list[str]:
    """data-sort values of the column whose header reads `header`, in row order."""
    return driver.execute_script(
        """const [table, header] = arguments;
        const col = [...table.tHead.rows[0].cells].findIndex(
            th => th.textContent.trim().startsWith(header));
        return [...table.tBodies[0].rows].map(r => r.cells[col].getAttribute('data-sort'));""",
        table,
        header,
    )


def test_page_loads_offline_and_names_are_text(page):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    driver, base = page
    assert driver.title == TITLE
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018  (reading it is the check)
    urls = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href]);"
    )
    assert urls and all(u.startswith(("file:", "data:")) for u in urls), urls
    assert driver.execute_script("return document.images.length") == 0
    assert driver.execute_script("return document.scripts.length") == 1
    names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "td.name")]
    assert any(n.startswith(SCRIPT) for n in names)
    assert any(n.startswith(IMAGE) for n in names)
    assert driver.title == TITLE  # nothing rewrote it


def test_clicking_a_header_sorts_the_rows(page):
    from selenium.webdriver.common.by import By

    driver, _ = page
    table = driver.find_element(By.CSS_SELECTOR, "#task-0 table.sortable")
    before = _column(driver, table, "model")
    header = table.find_element(By.XPATH, ".//th[starts-with(normalize-space(.), 'overall')]")
    button = header.find_element(By.TAG_NAME, "button")
    table.find_element(By.XPATH, ".//th[starts-with(normalize-space(.), 'model')]//button").click()
    names = _column(driver, table, "model")
    assert names != before and sorted(names) != before  # by accuracy before, by name now
    assert names[0] == IMAGE and names[-1] == "trained"  # localeCompare: "!" < "<" < letters
    button.click()
    assert header.get_attribute("aria-sort") == "descending"
    values = [float(v) for v in _column(driver, table, "overall")]
    assert values == sorted(values, reverse=True)
    button.click()
    assert header.get_attribute("aria-sort") == "ascending"
    values = [float(v) for v in _column(driver, table, "overall")]
    assert values == sorted(values) and values[0] < values[-1]
    assert _column(driver, table, "model") != before  # the rows really moved


def test_per_bin_plots_are_drawn_and_a_screenshot_is_kept(page):
    from selenium.webdriver.common.by import By

    driver, base = page
    figures = driver.find_elements(By.CSS_SELECTOR, "section[id^='task-'] figure svg")
    assert len(figures) == 2 * 3  # per bin and per relation, for alpha, beta and demo
    for svg in figures:
        assert svg.is_displayed() and svg.size["width"] > 200 and svg.size["height"] > 100
    lines = driver.execute_script(
        "return document.querySelector('#task-0 figure svg').querySelectorAll('path').length"
    )
    assert lines > 10
    assert driver.find_element(By.CSS_SELECTOR, "#all-tasks figure svg").is_displayed()
    driver.execute_script("window.scrollTo(0, 0)")
    shot = base / "screenshot.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("MOSRM_SCREENSHOT_DIR"):
        folder = Path(os.environ["MOSRM_SCREENSHOT_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, folder / "board.png")


def test_the_page_fits_1280_px_and_ranks_before_it_defines(page):
    """Papers' board: no horizontal scroll at 1280 px (the page and every table), the ranking
    before the definitions, names not broken inside a word."""
    from selenium.webdriver.common.by import By

    driver, _ = page
    assert driver.execute_script("return window.innerWidth") <= 1280
    wide = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert wide <= 0, f"the page scrolls sideways by {wide} px"
    tables = driver.execute_script(
        """return [...document.querySelectorAll('.scroll')].filter(
            d => d.scrollWidth > d.clientWidth + 1).map(d => d.querySelector('table')
            .getAttribute('aria-label'));"""
    )
    assert tables == [], f"tables wider than the page: {tables}"
    top = driver.execute_script(
        "return [document.querySelector('#task-0 table.sortable'), "
        "document.getElementById('about')].map(e => e.getBoundingClientRect().top + scrollY)"
    )
    assert top[0] < top[1], "the ranking must come before the definitions"
    assert driver.find_element(By.CSS_SELECTOR, "header a[href='#about']").is_displayed()


def test_each_figure_downloads_and_the_legend_switches_models(page):
    from selenium.webdriver.common.by import By

    driver, base = page
    figures = driver.find_elements(By.CSS_SELECTOR, "section[id^='task-'] figure")
    assert figures
    for fig in figures:
        links = [a.get_attribute("href") for a in fig.find_elements(By.CSS_SELECTOR, "a[download]")]
        assert [h.rsplit(".", 1)[1] for h in links] == ["svg", "pdf"], links
        for href in links:
            assert Path(href.removeprefix("file://")).is_file(), href
    tables = driver.find_elements(By.CSS_SELECTOR, "section[id^='task-'] p.downloads a")
    assert any(a.get_attribute("href").endswith(".tex") for a in tables)
    boxes = driver.find_elements(By.CSS_SELECTOR, "#task-0 .legend input")
    off = [b for b in boxes if not b.is_selected()]
    assert off, "more models than the default set: some start unticked"
    box = off[0]
    gid = f"{box.get_attribute('data-fig')}-{box.get_attribute('data-gid')}-line"
    shown = "return getComputedStyle(document.getElementById(arguments[0])).display"
    assert driver.execute_script(shown, gid) == "none"
    driver.execute_script("arguments[0].click()", box)
    assert driver.execute_script(shown, gid) != "none"


def test_the_committed_board_fits_1280_px(browser):
    """The official demo board as committed: no sideways scroll at 1280 px either."""
    board = Path(__file__).resolve().parents[1] / "leaderboard" / "site" / "index.html"
    browser.get(board.as_uri())
    wide = browser.execute_script(
        """return Math.max(document.documentElement.scrollWidth -
            document.documentElement.clientWidth, ...[...document.querySelectorAll('.scroll')]
            .map(d => d.scrollWidth - d.clientWidth))"""
    )
    assert wide <= 1, f"the committed board scrolls sideways by {wide} px at 1280"
