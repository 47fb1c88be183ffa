"""The sliders and drop-downs in a real browser: JupyterLab on localhost, driven in Chromium.

The test starts JupyterLab (a free port, a random token, stopped at the end) in a temporary
folder holding copies of the notebooks, opens them in headless Chromium (Debian's package, with
its chromedriver) through Selenium, runs every cell, moves the occlusion explorer's patch-size and
stride sliders and its class drop-down (notebook 04) and the Grad-CAM explorer's drop-downs
(notebook 06), and checks that the map shown changes each time and that the page logged no
JavaScript error. A third test opens a *student* notebook, where the exercises are not solved, and
checks that *Run All* goes on past the failing check cells to the last cell.

Screenshots go to build/browser/. Chromium is installed with apt-get when it is missing and the
test runs as root (as in CI); otherwise the tests are skipped with the command to install it.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from vislib.course import notebooks
from vislib.exercises.build import student_notebook

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "build" / "browser"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
#: Chromium's flags for a sandbox without network (its background services would try to go out).
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000"]


def _ensure_chromium() -> None:
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("Chromium is not installed: apt-get install chromium chromium-driver")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"], check=True, env=env,
                   capture_output=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on localhost over a folder of notebook copies: ``(url, token, folder)``."""
    pytest.importorskip("selenium")
    _ensure_chromium()
    folder = tmp_path_factory.mktemp("lab")
    for path in notebooks(["04", "06"]):
        shutil.copy(path, folder / path.name)
    nbformat.write(student_notebook(nbformat.read(notebooks(["10"])[0], as_version=4)),
                   folder / "student_10.ipynb")
    news = folder / ".settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false", "checkForUpdates": false}')   # no "official news?" prompt
    port, token = _free_port(), os.urandom(16).hex()
    env = {**os.environ, "VISLIB_QUICK": "1", "VISLIB_FIGS": str(folder / "figs"),
           "JUPYTER_CONFIG_DIR": str(folder / ".jupyter"), "JUPYTER_RUNTIME_DIR": str(folder / ".runtime"), "JUPYTERLAB_SETTINGS_DIR": str(folder / ".settings")}
    log = open(folder / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    json.load(r)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" + (folder / "lab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield url, token, folder
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


# --------------------------------------------------------------------------- page helpers
NOTEBOOK_STATE = """
const panel = window.jupyterapp.shell.currentWidget;
if (!panel || !panel.content || !panel.sessionContext.session) { return null; }
const cells = panel.content.widgets.filter(c => c.model.type === 'code');
const kernel = panel.sessionContext.session.kernel;
return {cells: cells.length, ran: cells.filter(c => c.model.executionCount !== null).length,
        last: cells.length ? cells[cells.length - 1].model.executionCount : null,
        status: kernel ? kernel.status : 'none',
        errors: cells.filter(c => c.model.outputs.toJSON().some(o => o.output_type === 'error')).map(
            c => panel.content.widgets.indexOf(c))};
"""


RUN_ALL = """
const panel = window.jupyterapp.shell.currentWidget;
window.jupyterapp.shell.activateById(panel.id);      // the command acts on the active notebook
window.jupyterapp.commands.execute('notebook:run-all-cells');
return true;
"""


def _open_and_run_all(driver, url: str, token: str, name: str, timeout: float = 420) -> dict:
    # ?reset: a fresh workspace, so the tabs of an earlier test are not restored beside this one
    driver.get(f"{url}/lab/tree/{name}?reset&token={token}")
    deadline = time.monotonic() + 120
    while True:                                   # the notebook open and its kernel idle
        state = driver.execute_script("return window.jupyterapp ? (function(){" + NOTEBOOK_STATE + "})() : null;")
        if state and state["status"] == "idle":
            break
        assert time.monotonic() < deadline, f"{name} did not open with an idle kernel: {state}"
        time.sleep(1)
    # Started, not awaited: the command's promise settles only when the last cell has run.
    driver.execute_script(RUN_ALL)
    started, deadline = time.monotonic(), time.monotonic() + timeout
    retried = False
    while True:
        state = driver.execute_script("return (function(){" + NOTEBOOK_STATE + "})();")
        if state and state["last"] is not None and state["status"] == "idle":
            return state
        if not retried and state and state["ran"] == 0 and state["status"] == "idle" \
                and time.monotonic() - started > 30:
            driver.execute_script(RUN_ALL)        # the first command went to no notebook: once more
            retried = True
        if time.monotonic() > deadline:
            _shot(driver, f"{Path(name).stem}_timeout")
            raise AssertionError(f"Run All of {name} did not reach the last cell: {state}")
        time.sleep(2)


def _explorer_image(driver, index: int = 0) -> str:
    """The ``src`` of the figure that the index-th explorer shows (a base64 PNG)."""
    from selenium.webdriver.common.by import By

    boxes = driver.find_elements(By.CSS_SELECTOR, ".widget-interact")
    assert len(boxes) > index, "no ipywidgets explorer rendered on the page"
    images = boxes[index].find_elements(By.CSS_SELECTOR, ".widget-output img")
    assert images, "the explorer shows no figure"
    return images[-1].get_attribute("src")


def _wait_for_new_image(driver, before: str, what: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            now = _explorer_image(driver)
        except AssertionError:                   # the output is cleared while the map is redrawn
            now = before
        if now != before:
            return now
        time.sleep(0.5)
    raise AssertionError(f"the displayed map did not change after {what}")


def _javascript_errors(driver) -> list[str]:
    """SEVERE console entries that come from the page's scripts (not from failed network requests
    of a sandbox without internet)."""
    entries = driver.get_log("browser")
    return [e["message"] for e in entries if e["level"] == "SEVERE" and e.get("source") != "network"]


def _shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def _explorer_after_run_all(driver, lab, notebook: str):
    """Run All of ``notebook``, no cell in error; the first explorer, scrolled into view, and its figure."""
    from selenium.webdriver.common.by import By

    url, token, _ = lab
    state = _open_and_run_all(driver, url, token, notebook)
    assert state["errors"] == [], f"cells with errors: {state['errors']}"
    box = driver.find_elements(By.CSS_SELECTOR, ".widget-interact")[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", box)
    image = _explorer_image(driver)
    _shot(driver, f"{notebook[:2]}_explorer_start")
    return box, image


def _dropdowns(box) -> dict:
    """The explorer's drop-downs by their label: ``{label: <select> element}``."""
    from selenium.webdriver.common.by import By

    return {d.find_element(By.CSS_SELECTOR, "label").text: d.find_element(By.TAG_NAME, "select")
            for d in box.find_elements(By.CSS_SELECTOR, ".widget-dropdown")}


# --------------------------------------------------------------------------- tests
def test_occlusion_sliders_change_the_map_in_a_real_browser(lab, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    box, image = _explorer_after_run_all(browser, lab, "04_occlusion.ipynb")
    sliders = box.find_elements(By.CSS_SELECTOR, ".widget-slider")
    labels = [s.find_element(By.CSS_SELECTOR, "label").text for s in sliders]
    assert labels[:2] == ["patch (px)", "stride (px)"], labels
    for slider, label in zip(sliders[:2], labels):
        handle = slider.find_element(By.CSS_SELECTOR, ".noUi-handle")
        readout = slider.find_element(By.CSS_SELECTOR, ".widget-readout").text
        handle.click()
        handle.send_keys(Keys.ARROW_RIGHT)
        image = _wait_for_new_image(browser, image, f"moving the {label} slider")
        assert slider.find_element(By.CSS_SELECTOR, ".widget-readout").text == str(int(readout) + 1)
        _shot(browser, f"04_explorer_{label.split()[0]}")
    Select(_dropdowns(box)["class"]).select_by_index(3)
    _wait_for_new_image(browser, image, "choosing another class")
    _shot(browser, "04_explorer_class")
    assert _javascript_errors(browser) == []


def test_gradcam_dropdowns_change_the_map_in_a_real_browser(lab, browser):
    from selenium.webdriver.support.ui import Select

    box, image = _explorer_after_run_all(browser, lab, "06_gradcam.ipynb")
    dropdowns = _dropdowns(box)
    assert set(dropdowns) >= {"method", "layer", "class"}, set(dropdowns)
    for label, index in [("method", 1), ("layer", 0), ("class", 2)]:
        Select(dropdowns[label]).select_by_index(index)
        image = _wait_for_new_image(browser, image, f"choosing another {label}")
        _shot(browser, f"06_explorer_{label}")
    assert _javascript_errors(browser) == []


def test_run_all_goes_on_past_unsolved_exercises_in_a_student_notebook(lab, browser):
    url, token, folder = lab
    nb = nbformat.read(folder / "student_10.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    checks = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")]
    assert checks, "the student notebook has no check cells"
    state = _open_and_run_all(browser, url, token, "student_10.ipynb")
    _shot(browser, "student_10_run_all")
    assert state["ran"] == state["cells"] == len(code), state        # every code cell ran, the last included
    assert state["errors"] == checks, state                          # and only the unsolved checks failed
