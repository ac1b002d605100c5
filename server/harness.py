"""Running the server and a headless Chromium together, for the tests and the benchmarks.

WebRTC media stays on this machine: the server gathers host candidates on loopback and its own
addresses only (ServerConfig.ice_local_only), and Chromium is told to offer loopback ones with
real addresses instead of mDNS names.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path

import av
import cv2
from aiohttp import web

from stylecast.server.app import StylecastServer

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_args(camera_y4m: Path) -> list[str]:
    """Flags for a headless Chromium whose camera plays `camera_y4m` in a loop."""
    return [*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera_y4m}"]


def make_y4m(source: Path, target: Path, size: tuple[int, int] = (320, 240), frames: int = 90) -> Path:
    """The first `frames` frames of a video, scaled to `size`, as the .y4m Chromium's fake camera plays."""
    with av.open(str(source)) as src, av.open(str(target), "w", format="yuv4mpegpipe") as dst:
        stream = dst.add_stream("rawvideo", rate=30)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            if i >= frames:
                break
            rgb = cv2.resize(frame.to_ndarray(format="rgb24"), size, interpolation=cv2.INTER_AREA)
            out = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            out.pts = i
            dst.mux(stream.encode(out))
        dst.mux(stream.encode(None))
    return target


class ServerThread:
    """The aiohttp app on an ephemeral loopback port, in a thread with its own event loop.

    `with ServerThread(server) as url:` serves until the block ends, then stops the worker.
    """

    def __init__(self, server: StylecastServer):
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="stylecast-server", daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        runner = web.AppRunner(self.server.app())
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = runner.addresses[0][1]
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> str:
        self.thread.start()
        if not self.ready.wait(30):
            raise RuntimeError("the server did not start")
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.server.worker.stop()
