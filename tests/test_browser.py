"""The lesson in a real browser, as a person uses it: JupyterLab (open, Run All) and the Voilà
page, driven by Playwright with Debian's chromium (``apt-get install chromium``; launched by
``executable_path``, since ``playwright install`` cannot download browsers here).

In each: drag the λ slider to a value off the grid, wait, and check that the plot changed and
the status names the new value; drag the iteration scrubber and check that its image changed.
The notebook is a copy of ``notebooks/teach.ipynb`` whose refits off the grid run 10
iterations. Each server is started on 127.0.0.1 with its own token, config and workspace
folders, and stopped at the end. Skipped (with the reason) where chromium, Playwright,
JupyterLab or Voilà is missing; ``.ci/run`` installs them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")
sync_api = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "notebooks" / "teach.ipynb"
GRID = ROOT / "results" / "teach" / "grid.npz"
#: Seconds to wait for a server, a kernel's Run All, or a refit's redraw.
PATIENCE = 120


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def lesson(tmp_path_factory) -> Path:
    """The lesson notebook with tiny refits, opening on the committed grid."""
    folder = tmp_path_factory.mktemp("lesson")
    notebook = json.loads(LESSON.read_text())
    cell = next(c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", []))
    cell["source"] = f"GRID = {str(GRID)!r}\nREFIT_ITERATIONS = 10\n"
    (folder / "teach.ipynb").write_text(json.dumps(notebook))
    return folder


def _serve(command: list[str], folder: Path, url: str):
    """Start a server; return it once ``url`` answers."""
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(folder / ".config"),
               JUPYTERLAB_SETTINGS_DIR=str(folder / ".settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(folder / ".workspaces"),
               JUPYTER_RUNTIME_DIR=str(folder / ".runtime"), MPLBACKEND="Agg",
               DIPSPEC_PROGRESS="0")
    log = open(folder / f"{Path(command[2]).name}.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return server, log
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.5)
    server.terminate()
    log.close()
    pytest.fail(f"the server did not answer at {url}: "
                f"{(folder / log.name).read_text()[-2000:]}")


def _stop(server, log) -> None:
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


def _slider(page, label: str):
    return page.locator(".widget-slider", has=page.get_by_text(label, exact=False)).first


def _drag(page, slider, fraction: float) -> None:
    """Drag the slider's handle to ``fraction`` of its track, with the mouse."""
    handle = slider.locator(".noUi-handle").first
    track = slider.locator(".noUi-base").first
    handle.scroll_into_view_if_needed()
    box, bar = handle.bounding_box(), track.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(bar["x"] + fraction * bar["width"], box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()


def _image(page, index: int) -> str:
    return page.locator(".widget-image").nth(index).get_attribute("src") or ""


def _image_digest(page, index: int) -> str:
    """SHA-256 of the PNG an image widget shows (its blob URL differs from page to page)."""
    return page.evaluate("""async (index) => {
        const src = document.querySelectorAll('.widget-image')[index].src;
        const bytes = await (await fetch(src)).arrayBuffer();
        const digest = await crypto.subtle.digest('SHA-256', bytes);
        return Array.from(new Uint8Array(digest), b => b.toString(16).padStart(2, '0')).join('');
    }""", index)


def _use_the_lesson(page) -> None:
    """Drag λ off the grid and the scrubber, as a person would; check what changed."""
    page.wait_for_function("document.querySelectorAll('.widget-image').length >= 3",
                           timeout=PATIENCE * 1000)
    explorer_plot = _image(page, 2)
    lam = _slider(page, "Lipschitz bound")
    _drag(page, lam, 0.4)  # 0.8 on the grid's 0–2 track (step 0.2): not on the grid
    readout = lam.locator(".widget-readout").first.inner_text().strip()
    assert readout == "0.80"
    status = page.locator(".widget-html", has_text="peak").last
    page.wait_for_function(
        "([src]) => document.querySelectorAll('.widget-image')[2].src !== src",
        arg=[explorer_plot], timeout=PATIENCE * 1000)
    assert re.search(r"λ = 0\.8\b", status.inner_text())
    scrub_before = _image(page, 0)
    scrubber = _slider(page, "iteration")
    _drag(page, scrubber, 0.95)
    shown = scrubber.locator(".widget-readout").first.inner_text().strip()
    page.wait_for_function(
        "([src]) => document.querySelectorAll('.widget-image')[0].src !== src",
        arg=[scrub_before], timeout=PATIENCE * 1000)
    page.locator(".widget-html", has_text=f"plain DIP: iteration {shown};").wait_for(
        timeout=PATIENCE * 1000)  # the drag's last value is the one drawn


def test_the_lesson_in_jupyterlab(lesson, browser):
    """Run All, use it, save; reopened without a kernel, the last figures are still there
    (widget state saved, as the kit's JupyterLab default asks) and the saved outputs carry
    them as PNGs for static viewers."""
    pytest.importorskip("jupyterlab")
    # the user's setting, in this server's own settings folder (what dipspec's overrides.d
    # file makes the default where it is pip-installed; an editable install does not place it)
    settings = lesson / ".settings" / "@jupyter-widgets" / "jupyterlab-manager"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "plugin.jupyterlab-settings").write_text(json.dumps({"saveState": True}))
    token, port = secrets.token_hex(16), _free_port()
    server, log = _serve([sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
                          "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
                          f"--ServerApp.root_dir={lesson}"],
                         lesson, f"http://127.0.0.1:{port}/api/status?token={token}")
    url = f"http://127.0.0.1:{port}/lab/tree/teach.ipynb?token={token}"
    try:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(url)
        page.locator(".jp-RenderedMarkdown h1", has_text="Spectral bias, seen").wait_for(
            timeout=PATIENCE * 1000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=PATIENCE * 1000)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        _use_the_lesson(page)
        last = _image_digest(page, 2)
        page.keyboard.press("Control+s")
        page.wait_for_function("!document.querySelector('.jp-mod-dirty')", timeout=30_000)
        page.get_by_role("menuitem", name="Kernel", exact=True).click()
        page.get_by_role("menuitem", name="Shut Down Kernel", exact=True).click()
        page.close()
        reopened = browser.new_page(viewport={"width": 1600, "height": 1000})
        reopened.goto(url)
        reopened.wait_for_function("document.querySelectorAll('.widget-image').length >= 3",
                                   timeout=PATIENCE * 1000)
        assert reopened.get_by_text("model not found").count() == 0
        assert _image_digest(reopened, 2) == last  # the figure of λ = 0.8, as left
    finally:
        _stop(server, log)
    saved = json.loads((lesson / "teach.ipynb").read_text())
    explorer_cell = next(c for c in saved["cells"] if "grid_explorer(" in "".join(c["source"]))
    assert any("image/png" in out.get("data", {}) for out in explorer_cell["outputs"])


def test_the_voila_lesson(lesson, browser):
    pytest.importorskip("voila")
    port = _free_port()
    server, log = _serve([sys.executable, "-m", "voila", "teach.ipynb", "--no-browser",
                          "--Voila.ip=127.0.0.1", f"--port={port}", "--token="],
                         lesson, f"http://127.0.0.1:{port}/")
    try:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/", timeout=PATIENCE * 1000)
        page.locator("h2", has_text="Watch the frequencies arrive").wait_for(
            timeout=PATIENCE * 1000)
        assert page.locator(".jp-InputArea-editor").count() == 0  # no code on the page
        _use_the_lesson(page)
    finally:
        _stop(server, log)
