"""The page in real headless browsers: Chromium, whose fake camera plays a shared video clip,
and Firefox, whose fake camera is a generated pattern.

Needs Debian's chromium and firefox-esr (installed by .ci/run) and the playwright package for
Chromium; each test skips without its browser. WebRTC media stays on this machine (see
server/harness.py and server/firefox.py).
"""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared_path

from stylecast.server.app import ServerConfig, StylecastServer
from stylecast.server.firefox import Firefox, firefox_path
from stylecast.server.harness import ServerThread, chromium_args, chromium_path, make_y4m
from stylecast.server.worker import InferenceWorker

CHROMIUM = chromium_path()
FIREFOX = firefox_path()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")


def own_ipv4_addresses() -> list[str]:
    import ifaddr  # aioice's own address lister

    return [ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips if ip.is_IPv4 and ip.ip != "127.0.0.1"]


def firefox_missing() -> str | None:
    if FIREFOX is None:
        return "Debian's firefox-esr is not installed (.ci/run installs it)"
    if not own_ipv4_addresses():  # Firefox offers no loopback ICE candidates
        return "this machine has no IPv4 address but loopback, and Firefox does not use loopback for WebRTC"
    return None


FIREFOX_MISSING = firefox_missing()
needs_firefox = pytest.mark.skipif(FIREFOX_MISSING is not None, reason=str(FIREFOX_MISSING))
STAMP_ROWS = 16  # as in server/static/client.js


@pytest.fixture(scope="module")
def camera_file(tmp_path_factory) -> Path:
    clip = shared_path("media/video/big_buck_bunny_640x360.mp4")
    return make_y4m(clip, tmp_path_factory.mktemp("camera") / "camera.y4m")


def decode_png(data_url: str) -> np.ndarray:
    raw = base64.b64decode(data_url.split(",", 1)[1])
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def launch(playwright, camera_file: Path):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=chromium_args(camera_file))


def make_server(model: str, **config) -> StylecastServer:
    worker = InferenceWorker(backend="auto", device="cpu", target_fps=15)
    worker.load(model)
    worker.start()
    return StylecastServer(ServerConfig(models=[model], default_model=model, ice_local_only=True, **config), worker)


@needs_chromium
def test_page_streams_the_fake_camera_back_stylized(camera_file, small_model):
    sync_api = pytest.importorskip("playwright.sync_api")
    from stylecast.realtime.stylizer import Stylizer

    with ServerThread(make_server(small_model)) as url, sync_api.sync_playwright() as p:
        browser = launch(p, camera_file)
        page = browser.new_page()
        page.goto(f"{url}/?autostart=1")
        page.wait_for_function(
            "window.stylecastStats.framesShown > 60 && window.stylecastStats.latencies.length > 30"
            " && window.stylecastStats.received > 0",
            timeout=90_000,
        )
        stats = page.evaluate("window.stylecastStats")
        local = decode_png(page.evaluate("Stylecast.grab('local')"))
        remote = decode_png(page.evaluate("Stylecast.grab('remote')"))
        overlay = page.inner_text("#stats")
        browser.close()

    assert not stats["errors"], stats["errors"]
    assert stats["connected"] and stats["fps"] > 2
    assert 0 < stats["latencyP50Ms"] <= stats["latencyP95Ms"] < 2000
    assert stats["dropped"] >= 0 and stats["processed"] > 30
    assert "fps" in overlay and "latency" in overlay and "dropped" in overlay
    picture = remote[: remote.shape[0] - STAMP_ROWS]
    assert picture.shape == local.shape == (240, 320, 3)
    # The page shows what the model makes of the camera: compare with our own stylization of the
    # camera frame grabbed at the same moment (the stream lags a few frames behind it).
    expected = Stylizer.create(small_model, backend="torch", device="cpu").one(local)
    to_input = np.abs(picture.astype(int) - local.astype(int)).mean()
    to_model = np.abs(picture.astype(int) - expected.astype(int)).mean()
    assert to_input > 20 and to_model < 0.6 * to_input, (to_input, to_model)


@needs_chromium
def test_two_participants_in_a_room_see_each_other(camera_file, small_model, screenshots):
    sync_api = pytest.importorskip("playwright.sync_api")
    with ServerThread(make_server(small_model, max_room_size=3)) as url, sync_api.sync_playwright() as p:
        browser = launch(p, camera_file)
        pages = [browser.new_page() for _ in range(2)]
        for page in pages:
            page.goto(f"{url}/room/tea?autostart=1")
        for page in pages:  # each shows itself and the other participant, stylized
            page.wait_for_function(
                "window.stylecastStats.framesShown > 20 && [...document.querySelectorAll('video[data-slot]')]"
                ".some(v => Number(v.dataset.frames || 0) > 20)",
                timeout=90_000,
            )
        busiest = (
            "[...document.querySelectorAll('video[data-slot]')].sort((a, b) => b.dataset.frames - a.dataset.frames)[0]"
        )
        frames = [page.evaluate(f"Stylecast.grab({busiest})") for page in pages]
        self_view = [page.evaluate("getComputedStyle(document.getElementById('local')).display") for page in pages]
        strip_rows = [int(page.evaluate(f"{busiest}.dataset.stripRows")) for page in pages]
        for page in pages:
            page.screenshot(path=str(screenshots / f"room-{pages.index(page)}.png"))
        browser.close()
    for data_url in frames:
        other = decode_png(data_url)
        assert other.shape[1] == 320 and other[:-STAMP_ROWS].std() > 10  # a real picture
    assert self_view == ["none", "none"]  # the raw camera stays hidden (it showed full-width under the grid)
    assert all(STAMP_ROWS <= rows <= STAMP_ROWS + 3 for rows in strip_rows), strip_rows  # found in the frame itself


@pytest.fixture
def screenshots(tmp_path) -> Path:
    """Where the page's screenshots go ($STYLECAST_SCREENSHOTS to keep them for a look)."""
    import os

    folder = Path(os.environ.get("STYLECAST_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@needs_chromium
def test_the_styles_are_listed_before_the_camera_starts(camera_file, small_model, screenshots):
    sync_api = pytest.importorskip("playwright.sync_api")
    with ServerThread(make_server(small_model)) as url, sync_api.sync_playwright() as p:
        browser = launch(p, camera_file)
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("document.querySelectorAll('#model option').length > 0", timeout=30_000)
        options = page.eval_on_selector_all("#model option", "os => os.map(o => o.value)")
        start_enabled = page.is_enabled("#start")
        asked_for_camera = page.evaluate("Boolean(document.getElementById('local').srcObject)")
        page.screenshot(path=str(screenshots / "before-start.png"))
        browser.close()
    assert options == [small_model] and start_enabled and not asked_for_camera


@needs_chromium
def test_without_a_camera_the_page_says_so_and_start_can_be_pressed_again(small_model, screenshots):
    from stylecast.server.harness import CHROMIUM_ARGS

    sync_api = pytest.importorskip("playwright.sync_api")
    no_camera = [arg for arg in CHROMIUM_ARGS if arg != "--use-fake-device-for-media-stream"]
    with ServerThread(make_server(small_model)) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=no_camera)
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("!document.getElementById('start').disabled", timeout=30_000)
        messages = []
        for _ in range(2):  # the second press is a retry, not a dead button
            page.click("#start")
            page.wait_for_function(
                f"window.stylecastStats.errors.length > {len(messages)} && !document.getElementById('start').disabled",
                timeout=30_000,
            )
            messages.append(page.inner_text("#error"))
        page.screenshot(path=str(screenshots / "no-camera.png"))
        browser.close()
    assert len(messages) == 2 and all(m.startswith("No camera was found.") for m in messages), messages
    assert "press Start again" in messages[0] and "Error" not in messages[0]


def flat_frame_colour(model: str) -> np.ndarray:
    """The mean colour the model gives a flat frame (the same whatever its colour)."""
    from stylecast.realtime.stylizer import Stylizer

    flat = np.full((240, 320, 3), 128, np.uint8)
    return Stylizer.create(model, "torch", "cpu").one(flat).mean(axis=(0, 1))


@needs_firefox
def test_firefox_page_streams_its_fake_camera_back_stylized(small_model, tmp_path):
    with ServerThread(make_server(small_model)) as url, Firefox(FIREFOX, tmp_path / "profile") as firefox:
        firefox.goto(f"{url}/?autostart=1")
        firefox.wait_for("window.stylecastStats.framesShown > 40 && window.stylecastStats.latencies.length > 20", 90)
        stats = firefox.evaluate("window.stylecastStats")
        local = decode_png(firefox.evaluate("Stylecast.grab('local')"))
        remote = decode_png(firefox.evaluate("Stylecast.grab('remote')"))
        overlay = firefox.evaluate("document.querySelector('#stats').innerText")

    assert not stats["errors"], stats["errors"]
    # (no instantaneous fps bound: the 640x480 fake camera makes the governor change the
    # processing size, and Firefox shows nothing until the next key frame after each change)
    assert stats["connected"] and stats["framesShown"] > 40 and stats["processed"] > 20
    assert 0 < stats["latencyP50Ms"] <= stats["latencyP95Ms"] < 2000
    assert "fps" in overlay and "latency" in overlay and "dropped" in overlay
    # Firefox's fake camera is one flat colour (a frame-count barcode on the top rows); the default
    # turns any flat frame into its own night blue, so what comes back is that colour.
    camera, picture = local[8:], remote[8 : remote.shape[0] - STAMP_ROWS]
    assert camera.std(axis=(0, 1)).max() < 3
    assert np.abs(picture.mean(axis=(0, 1)) - flat_frame_colour(small_model)).max() < 25, picture.mean(axis=(0, 1))


@needs_chromium
@needs_firefox
def test_chromium_and_firefox_call_each_other_in_a_room(camera_file, small_model, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    sees_the_other = (
        "window.stylecastStats.framesShown > 20 && [...document.querySelectorAll('video[data-slot]')]"
        ".some(v => Number(v.dataset.frames || 0) > 20)"
    )
    first_slot = "document.querySelector('video[data-slot]')"
    with (
        ServerThread(make_server(small_model)) as url,
        sync_api.sync_playwright() as p,
        Firefox(FIREFOX, tmp_path / "profile") as firefox,
    ):
        chromium = launch(p, camera_file)
        page = chromium.new_page()
        page.goto(f"{url}/room/mixed?autostart=1")
        firefox.goto(f"{url}/room/mixed?autostart=1")
        page.wait_for_function(sees_the_other, timeout=90_000)
        firefox.wait_for(sees_the_other, 90)
        firefox_sees = decode_png(firefox.evaluate(f"Stylecast.grab({first_slot})"))
        chromium_sees = decode_png(page.evaluate(f"Stylecast.grab({first_slot})"))
        chromium.close()
    # Firefox sees the clip Chromium's camera plays, stylized; Chromium sees Firefox's flat
    # camera in the model's colour for a flat frame.
    assert firefox_sees.shape[1] == 320 and firefox_sees[:-STAMP_ROWS].std() > 10
    seen = chromium_sees[8:-STAMP_ROWS].mean(axis=(0, 1))
    assert np.abs(seen - flat_frame_colour(small_model)).max() < 25, seen
