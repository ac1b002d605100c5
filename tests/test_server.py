"""The WebRTC server with real peers: aiortc clients over loopback, a real model, real limits."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
import tracemalloc
from fractions import Fraction
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from aiohttp.test_utils import TestServer
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from av import VideoFrame

from stylecast.core.errors import InputError
from stylecast.realtime.processing import StyleOptions
from stylecast.server.app import ServerConfig, StylecastServer
from stylecast.server.tracks import FrameMailbox, TrackStats
from stylecast.server.worker import ClientSettings, InferenceWorker, Job, serving_threads

STAMP_ROWS, STAMP_BITS = 16, 12


def read_stamp(rgb: np.ndarray) -> int:
    """The frame number written by SyntheticCamera into the bottom strip (as the page does)."""
    row = rgb[-STAMP_ROWS // 2].mean(axis=1)
    width = rgb.shape[1]
    bits = [row[int((i + 0.5) * width / STAMP_BITS)] > 127 for i in range(STAMP_BITS)]
    return int("".join("1" if b else "0" for b in bits), 2)


class SyntheticCamera(VideoStreamTrack):
    """A 30 fps camera: a gradient picture over a strip that encodes the frame number."""

    def __init__(self, width=320, height=240, fps=30):
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.sent: dict[int, tuple[float, int]] = {}  # frame number -> (send time, pts)
        self.count = 0
        self._start = None

    async def recv(self):
        if self._start is None:
            self._start = time.perf_counter()
        due = self._start + self.count / self.fps
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        gradient = np.linspace(0, 255, self.width, dtype=np.uint8)[None, :, None]
        rgb = np.broadcast_to(gradient, (self.height + STAMP_ROWS, self.width, 3)).copy()
        cell = self.width / STAMP_BITS
        for i in range(STAMP_BITS):
            bit = (self.count >> (STAMP_BITS - 1 - i)) & 1
            rgb[self.height :, int(i * cell) : int((i + 1) * cell)] = 255 * bit
        frame = VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts, frame.time_base = self.count * 3000 + (self.count % 3), Fraction(1, 90000)  # uneven spacing
        self.sent[self.count] = (time.perf_counter(), frame.pts)
        self.count += 1
        return frame


class SlowBackend:
    """Wraps a backend and adds a fixed delay: a model slower than the camera."""

    def __init__(self, backend, delay):
        self.backend, self.delay = backend, delay
        self.name, self.device, self.dtype = backend.name, backend.device, backend.dtype

    def __call__(self, x):
        time.sleep(self.delay)
        return self.backend(x)


def make_server(small_model, **config):
    """A server whose WebRTC media stays on this machine (the in-process aiortc clients too)."""
    worker = InferenceWorker(backend="torch", device="cpu", target_fps=30, adaptive=config.pop("adaptive", False))
    worker.load(small_model)
    worker.start()
    settings = ServerConfig(models=[small_model], default_model=small_model, ice_local_only=True, **config)
    return StylecastServer(settings, worker)


async def connect(base_url, path="/offer", camera=None, token=None):
    """An aiortc client: sends `camera`, returns (pc, received frames list, arrival times)."""
    pc = RTCPeerConnection()
    camera = camera or SyntheticCamera()
    pc.addTransceiver(camera, direction="sendrecv")
    channel = pc.createDataChannel("control")
    received, messages = [], []
    channel.on("message", lambda m: messages.append(json.loads(m)))

    @pc.on("track")
    def on_track(track):
        async def pull():
            while True:
                try:
                    frame = await track.recv()
                except Exception:  # noqa: BLE001 - the track ended
                    return
                received.append((frame, time.perf_counter()))

        asyncio.ensure_future(pull())

    await pc.setLocalDescription(await pc.createOffer())
    headers = {"X-Stylecast-Token": token} if token else {}
    async with aiohttp.ClientSession() as session:
        offer = {"sdp": pc.localDescription.sdp, "type": "offer", "stamp_rows": STAMP_ROWS}
        async with session.post(f"{base_url}{path}", json=offer, headers=headers) as r:
            answer = await r.json()
            assert r.status == 200, answer
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    return pc, camera, received, messages, channel


async def serve(server):
    test_server = TestServer(server.app(), host="127.0.0.1")
    await test_server.start_server()
    return test_server, f"http://127.0.0.1:{test_server.port}"


def test_stream_round_trip_stylizes_and_keeps_timestamps(small_model):
    async def scenario():
        server = make_server(small_model)
        test_server, url = await serve(server)
        try:
            pc, camera, received, messages, channel = await connect(url)
            assert gc.get_freeze_count() > 0  # what lives from the start is out of the collector's full passes
            await asyncio.sleep(3.0)
            assert len(received) > 10
            frames = [f.to_ndarray(format="rgb24") for f, _ in received]
            numbers = [read_stamp(rgb) for rgb in frames]
            assert numbers == sorted(numbers) and all(n in camera.sent for n in numbers)  # in order, stamps intact
            # RTP adds a random offset on each hop, but every interval between frames is the
            # input's (to within the VP8 encoder's rounding of timestamps: < 0.5 ms)
            sent_pts = np.diff([camera.sent[n][1] for n in numbers])
            got_pts = np.diff([f.pts for f, _ in received])
            assert np.abs(got_pts - sent_pts).max() <= 45
            out = frames[-1][:-STAMP_ROWS]
            assert out.shape == (240, 320, 3)
            gradient = np.linspace(0, 255, 320)[None, :]
            assert np.abs(out[..., 0].astype(float) - gradient).mean() > 20  # stylized, not echoed
            channel.send(json.dumps({"type": "settings", "strength": 0.0}))
            await asyncio.sleep(1.0)
            plain = received[-1][0].to_ndarray(format="rgb24")[:-STAMP_ROWS]
            assert np.abs(plain[..., 0].astype(float) - gradient).mean() < 12  # strength 0: the input
            assert any(m["type"] == "stats" and m["processed"] > 0 for m in messages)
            assert any(m["type"] == "settings" and m["strength"] == 0.0 for m in messages)
            channel.send(json.dumps({"type": "settings", "model": "nope"}))
            channel.send("not json")
            channel.send("[" * 5000 + "]" * 5000)  # deeper than json's recursion limit
            await asyncio.sleep(0.5)
            errors = [m["message"] for m in messages if m["type"] == "error"]
            assert "unknown model 'nope'" in errors[0] and len(errors) == 3
            assert errors[2] == "JSON nested too deep"
            await pc.close()
            for _ in range(50):  # the server notices and cleans up
                if not server.peers:
                    break
                await asyncio.sleep(0.1)
            assert not server.peers and server.closed_peers == 1
        finally:
            await test_server.close()
            server.worker.stop()

    asyncio.run(scenario())


def test_server_streams_a_shipped_translator():
    """The colorizer through WebRTC: its output keeps the camera's luminance (a gray gradient)."""

    async def scenario():
        server = make_server("colorize")
        test_server, url = await serve(server)
        try:
            pc, _, received, _, _ = await connect(url)
            await asyncio.sleep(3.0)
            assert len(received) > 5
            out = received[-1][0].to_ndarray(format="rgb24")[:-STAMP_ROWS].astype(float)
            assert out.shape == (240, 320, 3)
            gradient = np.linspace(0, 255, 320)[None, :]
            assert np.abs(out @ [0.299, 0.587, 0.114] - gradient).mean() < 12
            assert np.abs(out[..., 0] - out[..., 2]).mean() > 6  # and colours it: an echo stays gray
            await pc.close()
        finally:
            await test_server.close()
            server.worker.stop()

    asyncio.run(scenario())


def test_slow_model_drops_frames_and_latency_stays_bounded(small_model):
    """A 120 ms model behind a 30 fps camera for 8 s: latency must not grow (aiortc #1192)."""

    async def scenario():
        server = make_server(small_model)
        stylizer = server.worker.models[small_model]
        stylizer.backend = SlowBackend(stylizer.backend, 0.12)
        test_server, url = await serve(server)
        try:
            pc, camera, received, _, _ = await connect(url)
            # the first seconds carry the connection's start-up (first key frame, encoder warm-up,
            # tracing switched on): on a loaded 2-core CI machine those frames reached 1.3 s and
            # then drained to under 0.8 s, so latency is judged on the frames after them
            tracemalloc.start()
            await asyncio.sleep(2.0)
            steady_from = time.perf_counter()
            early_memory, _ = tracemalloc.get_traced_memory()
            await asyncio.sleep(6.0)
            late_memory, _ = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            latencies = [
                (arrived - camera.sent[read_stamp(f.to_ndarray(format="rgb24"))][0]) * 1000
                for f, arrived in received
                if arrived >= steady_from
            ]
            stats = next(iter(server.peers.values())).track.stats
            first, last = np.median(latencies[:10]), np.median(latencies[-10:])
            assert stats.dropped > stats.processed  # ~30 fps in, ~8 fps out
            # a frame queue (aiortc #1192) would add 2.75 s of latency per second here (30 fps in,
            # 8 out), 16 s by the end of the window. Without one, latency is one pass through each
            # stage: 0.4-0.7 s on an idle 2-core machine with tracing on, 0.9-2.1 s with another
            # process busy on one of its cores; the bounds sit far below what a queue produces
            assert len(latencies) >= 10
            assert max(latencies) < 3000 and last < first + 300
            assert late_memory - early_memory < 5e6
            await pc.close()
        finally:
            await test_server.close()
            server.worker.stop()

    asyncio.run(scenario())


class ManualClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_frame_mailbox_keeps_a_bunch_and_drops_what_waited_too_long():
    """Frames 10 ms apart are both used, in order; a frame that waited 60 ms while a newer one
    waits is dropped (counted); a third waiting frame pushes out the oldest; with no allowance
    only the newest is used."""

    async def scenario():
        clock, stats = ManualClock(), TrackStats()
        mailbox = FrameMailbox(stats, max_wait_s=0.05, clock=clock)
        mailbox.put("a")
        clock.now = 0.010
        mailbox.put("b")
        clock.now = 0.030
        assert [await mailbox.take(), await mailbox.take()] == ["a", "b"]
        assert stats.dropped == 0
        mailbox.put("c")
        clock.now = 0.090
        mailbox.put("d")
        assert await mailbox.take() == "d"  # c waited 60 ms and d is newer
        assert stats.dropped == 1
        for frame in "efg":
            mailbox.put(frame)
        assert await mailbox.take() == "f" and stats.dropped == 2  # e pushed out, f not stale yet
        newest_only = FrameMailbox(TrackStats(), max_wait_s=0.0, clock=clock)
        for frame in "hi":
            newest_only.put(frame)
        assert await newest_only.take() == "i" and newest_only.stats.dropped == 1
        assert stats.received == 7

    asyncio.run(scenario())


def test_a_peer_that_never_connects_is_closed_after_the_timeout(small_model):
    """An offer answered but never followed by a connection (the tab closed at once): the server
    closes the peer after connect_timeout and forgets it."""

    async def scenario():
        server = make_server(small_model, connect_timeout=1.0)
        test_server, url = await serve(server)
        try:
            pc = RTCPeerConnection()
            pc.addTransceiver(SyntheticCamera(), direction="sendrecv")
            await pc.setLocalDescription(await pc.createOffer())
            async with aiohttp.ClientSession() as session:
                offer = {"sdp": pc.localDescription.sdp, "type": "offer"}
                async with session.post(f"{url}/offer", json=offer) as r:
                    assert r.status == 200  # answered; the client never applies the answer
            assert len(server.peers) == 1
            for _ in range(50):
                if not server.peers:
                    break
                await asyncio.sleep(0.1)
            assert not server.peers and server.closed_peers == 1
            await pc.close()
        finally:
            await test_server.close()
            server.worker.stop()

    asyncio.run(scenario())


def test_two_clients_share_one_batched_worker(small_model):
    async def scenario():
        server = make_server(small_model)
        stylizer = server.worker.models[small_model]
        stylizer.backend = SlowBackend(stylizer.backend, 0.1)  # jobs meet in the queue
        test_server, url = await serve(server)
        try:
            a = await connect(url, camera=SyntheticCamera(fps=15))
            b = await connect(url, camera=SyntheticCamera(fps=15))
            await asyncio.sleep(3.0)
            assert len(a[2]) > 5 and len(b[2]) > 5
            assert server.worker.frames > server.worker.turns  # some turns ran both clients at once
            for pc, *_ in (a, b):
                await pc.close()
        finally:
            await test_server.close()
            server.worker.stop()

    asyncio.run(scenario())


def test_room_participants_receive_each_other(small_model):
    async def scenario():
        server = make_server(small_model, max_room_size=3)
        test_server, url = await serve(server)
        try:
            clients = []
            for _ in range(2):
                pc = RTCPeerConnection()
                camera = SyntheticCamera(width=240, height=180, fps=15)
                pc.addTransceiver(camera, direction="sendrecv")
                pc.addTransceiver("video", direction="recvonly")
                pc.addTransceiver("video", direction="recvonly")
                counts = {}

                @pc.on("track")
                def on_track(track, pc=pc, counts=counts):
                    index = [t.receiver.track for t in pc.getTransceivers()].index(track)

                    async def pull():
                        while True:
                            try:
                                await track.recv()
                            except Exception:  # noqa: BLE001
                                return
                            counts[index] = counts.get(index, 0) + 1

                    asyncio.ensure_future(pull())

                await pc.setLocalDescription(await pc.createOffer())
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(f"{url}/room/tea/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"}) as r,
                ):
                    answer = await r.json()
                    assert r.status == 200, answer
                await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
                clients.append((pc, counts))
            await asyncio.sleep(4.0)
            for _, counts in clients:
                assert counts.get(0, 0) > 5  # themselves, stylized
                assert counts.get(1, 0) > 5  # the other participant, stylized
                assert counts.get(2, 0) == 0  # nobody in the third slot
            async with aiohttp.ClientSession() as session, session.get(f"{url}/api/stats") as r:
                assert (await r.json())["rooms"] == {"tea": 2}
            await clients[0][0].close()
            for _ in range(50):
                if "tea" in server.rooms and len(server.rooms["tea"].peers) == 1:
                    break
                await asyncio.sleep(0.1)
            assert len(server.rooms["tea"].peers) == 1
            await clients[1][0].close()
            for _ in range(50):
                if not server.rooms:
                    break
                await asyncio.sleep(0.1)
            assert not server.rooms and not server.peers
        finally:
            await test_server.close()
            server.worker.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"not json", 400, "must be JSON"),
        (b'{"type": "answer", "sdp": "v=0"}', 400, "expected"),
        (b'{"type": "offer", "sdp": "hello"}', 400, "must start with v=0"),
        (b'{"type": "offer", "sdp": "v=0\\r\\nthis is not sdp"}', 400, "malformed SDP"),
        (b'{"type": "offer", "sdp": "v=0", "settings": {"strength": 7}}', 400, "strength must be"),
        (b'{"type": "offer", "sdp": "v=0", "stamp_rows": -1}', 400, "stamp_rows"),
        (b'{"type": "offer", "sdp": "v=0", "stamp_rows": true}', 400, "stamp_rows"),
        (b'{"type": "offer", "sdp": "' + b"v" * 70000 + b'"}', 413, ""),
        (b"[" * 30000 + b"]" * 30000, 400, "must be JSON"),
    ],
    ids=[
        "not-json",
        "not-offer",
        "not-sdp",
        "garbage-sdp",
        "bad-settings",
        "bad-stamp",
        "bool-stamp",
        "too-large",
        "nested",
    ],  # fmt: skip
)
def test_malformed_offers_get_4xx_and_the_server_keeps_serving(small_model, body, status, message):
    async def scenario():
        server = make_server(small_model)
        test_server, url = await serve(server)
        try:
            headers = {"Content-Type": "application/json"}
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"{url}/offer", data=body, headers=headers) as r,
            ):
                assert r.status == status
                assert message in await r.text()
            assert not server.peers  # nothing left behind
            pc, _, received, _, _ = await connect(url)  # and the next client is served
            for _ in range(100):  # the first frame: 1.5 s on idle cores, longer on busy ones
                if received:
                    break
                await asyncio.sleep(0.1)
            assert received
            await pc.close()
        finally:
            await test_server.close()
            server.worker.stop()

    asyncio.run(scenario())


def test_refused_room_offers_hold_no_room(small_model):
    async def scenario():
        server = make_server(small_model, max_rooms=1)
        test_server, url = await serve(server)
        try:
            async with aiohttp.ClientSession() as session:
                for name in ("a", "b", "c"):
                    offer = {"sdp": "v=0\r\n", "type": "offer", "settings": {"strength": 7}}
                    async with session.post(f"{url}/room/{name}/offer", json=offer) as r:
                        assert r.status == 400 and "strength must be" in await r.text()
            assert not server.rooms
        finally:
            await test_server.close()
            server.worker.stop()

    asyncio.run(scenario())


def test_limits_token_rooms_and_static_files(small_model):
    async def scenario():
        server = make_server(small_model, host="0.0.0.0", max_peers=1, max_rooms=1)
        assert server.config.token  # off loopback a token is made up when none is given
        test_server, url = await serve(server)
        token = server.config.token
        try:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
                for path in ("/", "/api/config", "/static/client.js"):
                    async with session.get(url + path) as r:
                        assert r.status == 401
                for wrong in ("wrong", "%C3%A9"):  # a non-ASCII token too (compare_digest takes ASCII str only)
                    async with session.get(f"{url}/?token={wrong}") as r:
                        assert r.status == 401
                async with session.get(f"{url}/?token={token}") as r:
                    assert r.status == 200 and "stylecast_token" in r.cookies  # the page's own requests carry it
                async with session.get(f"{url}/static/client.js") as r:
                    assert r.status == 200
                for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py"):
                    async with session.get(url + path) as r:
                        assert r.status in (403, 404) and "StylecastServer" not in await r.text()
                async with session.get(f"{url}/room/bad%20name") as r:
                    assert r.status == 400
            pc, *_ = await connect(url, token=token)
            async with aiohttp.ClientSession() as session:
                headers = {"X-Stylecast-Token": token}
                async with session.post(f"{url}/offer", json={"sdp": "v=0\r\n", "type": "offer"}, headers=headers) as r:
                    assert r.status == 503 and "too many peers" in await r.text()
            await pc.close()
        finally:
            await test_server.close()
            server.worker.stop()

    asyncio.run(scenario())


def test_batched_turn_gives_the_same_frames_as_one_client_at_a_time(small_model):
    """Several streams in one model call must not change anyone's frames."""
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(3)]
    settings = [
        ClientSettings(small_model),
        ClientSettings(small_model, strength=0.5),
        ClientSettings(small_model, preserve_color=True),
    ]
    worker = InferenceWorker(backend="torch", device="cpu", adaptive=False)
    worker.load(small_model)

    async def run(batched: bool):
        loop = asyncio.get_running_loop()
        jobs = [Job(f, s, loop.create_future(), loop) for f, s in zip(frames, settings, strict=True)]
        if batched:
            worker._turn(jobs)
        else:
            for job in jobs:
                worker._turn([job])
        await asyncio.sleep(0)  # let the results land
        return [job.future.result() for job in jobs]

    together, alone = asyncio.run(run(True)), asyncio.run(run(False))
    for a, b in zip(together, alone, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert np.abs(together[0].astype(int) - together[1].astype(int)).mean() > 5  # settings applied per client


def test_arbitrary_style_model_offers_the_given_pictures_and_mixes_them():
    """The shipped arbitrary-style model in the server: the pictures given are its styles."""
    from stylecast.core.errors import InputError

    with pytest.raises(InputError, match="--style-image"):
        InferenceWorker(backend="torch", device="cpu").load("arbitrary")
    rng = np.random.default_rng(0)
    pictures = {"calm": np.full((64, 64, 3), 90, np.uint8), "busy": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)}
    worker = InferenceWorker(backend="torch", device="cpu", adaptive=False, style_images=pictures)
    assert worker.styles("arbitrary") == ["calm", "busy"]
    frame = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)

    async def stylize(style):
        loop = asyncio.get_running_loop()
        job = Job(frame, ClientSettings("arbitrary", style=style), loop.create_future(), loop)
        worker._turn([job])
        await asyncio.sleep(0)
        return job.future.result().astype(float)

    calm, busy, mix = (asyncio.run(stylize(s)) for s in ("calm", "busy", "calm:0.5,busy:0.5"))
    assert np.abs(calm - busy).mean() > 1
    assert 0 < np.abs(mix - calm).mean() < np.abs(busy - calm).mean()  # a mix lies between its styles
    assert np.array_equal(asyncio.run(stylize(None)), calm)  # the first picture by default


def test_settings_validation_knows_each_models_styles():
    from stylecast.server.app import apply_settings

    styles = {"mosaic": [], "paintings": ["night", "wave"]}.__getitem__
    base = ClientSettings("paintings")
    assert apply_settings(base, {"style": "wave"}, ["mosaic", "paintings"], styles).style == "wave"
    assert (
        apply_settings(base, {"style": "night:0.5,wave:0.5"}, ["mosaic", "paintings"], styles).style
        == "night:0.5,wave:0.5"
    )
    with pytest.raises(ValueError, match="unknown style 'sun'"):
        apply_settings(base, {"style": "sun"}, ["mosaic", "paintings"], styles)
    with pytest.raises(ValueError, match="has one style"):
        apply_settings(ClientSettings("mosaic"), {"style": "night"}, ["mosaic", "paintings"], styles)
    switched = apply_settings(
        ClientSettings("paintings", style="wave"), {"model": "mosaic"}, ["mosaic", "paintings"], styles
    )
    assert switched.model == "mosaic" and switched.style is None
    assert base.style is None  # the original is untouched


def test_serving_threads_leave_one_core_to_the_codecs(monkeypatch):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert serving_threads() == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5}, raising=False)
    assert serving_threads() == 1  # never zero
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # macOS, Windows
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert serving_threads() == 7


@pytest.mark.parametrize("token", ["", "x", "fifteen-chars15"])
def test_a_short_token_is_refused_before_the_server_starts(token):
    with pytest.raises(InputError, match="--token must be at least 16 characters"):
        ServerConfig(host="0.0.0.0", token=token)
    assert ServerConfig(host="0.0.0.0", token="sixteen-chars-16").token == "sixteen-chars-16"


def test_token_bucket_allows_its_burst_then_its_rate(monkeypatch):
    from stylecast.server import app

    clock = [100.0]
    monkeypatch.setattr(app.time, "monotonic", lambda: clock[0])
    bucket = app.TokenBucket(rate=10.0, burst=5.0, tokens=5.0, stamp=100.0)
    assert [bucket.take() for _ in range(7)] == [True] * 5 + [False] * 2 and bucket.dropped == 2
    clock[0] += 0.35  # 3.5 tokens come back
    assert [bucket.take() for _ in range(4)] == [True] * 3 + [False]


def test_a_flood_of_control_messages_is_dropped_and_the_stream_goes_on(small_model):
    """20,000 settings messages from one peer: a burst is applied, the rest dropped with one error
    reply, and its stylized video keeps coming."""

    async def scenario():
        server = make_server(small_model)
        test_server, url = await serve(server)
        try:
            pc, _camera, received, messages, channel = await connect(url)
            await asyncio.sleep(1.0)
            before = len(received)
            for i in range(20_000):
                channel.send(json.dumps({"type": "settings", "strength": (i % 10) / 10}))
            await asyncio.sleep(3.0)
            replies = [m for m in messages if m["type"] == "settings"]
            errors = [m["message"] for m in messages if m["type"] == "error"]
            # the server applied a burst and the rate, not 20,000 messages (each a parse, an update and a reply)
            assert 60 <= len(replies) < 400 and errors == ["too many control messages; some were dropped"]
            assert len(received) >= before + 3  # frames kept arriving (this one process sends the flood too)
            await pc.close()
        finally:
            await test_server.close()
            server.worker.stop()

    asyncio.run(scenario())


def test_the_first_page_load_builds_no_model_and_blocks_no_request(small_model, monkeypatch):
    """/api/config lists every model's styles from their checkpoints; building a backend (slow
    here on purpose, as an ONNX export on an empty cache is) happens on the worker, never on the
    event loop, and one model at a time."""
    import time as clock

    from stylecast.server import worker as worker_module

    builds = []
    real_create = worker_module.create_backend

    def slow_create(*args, **kwargs):
        builds.append(clock.monotonic())
        clock.sleep(2.0)
        return real_create(*args, **kwargs)

    monkeypatch.setattr(worker_module, "create_backend", slow_create)

    async def scenario():
        worker = InferenceWorker(backend="torch", device="cpu", target_fps=30, adaptive=False).start()
        models = [small_model, "eight_paintings-small", "the_scream-small"]
        server = StylecastServer(ServerConfig(models=models, default_model=small_model, ice_local_only=True), worker)
        test_server, url = await serve(server)
        try:
            async with aiohttp.ClientSession() as session:
                started = clock.monotonic()
                async with session.get(f"{url}/api/config") as r:
                    config = await r.json()
                assert clock.monotonic() - started < 1.5 and not builds
                assert (
                    config["styles"]["eight_paintings-small"][0] == "starry_night"
                    and config["styles"][small_model] == []
                )
                pc, _camera, received, _messages, _channel = await connect(url)  # the first frame builds the model
                await asyncio.sleep(0.5)
                started = clock.monotonic()
                async with session.get(f"{url}/api/stats") as r:
                    assert r.status == 200
                assert clock.monotonic() - started < 0.5  # answered while the worker builds
                for _ in range(60):
                    if received:
                        break
                    await asyncio.sleep(0.1)
                assert received and len(builds) == 1
                await pc.close()
        finally:
            await test_server.close()
            worker.stop()

    asyncio.run(scenario())


def process_status(pid: int) -> tuple[int, float]:
    """A process's thread count and resident memory in MB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0]) / 1024


@contextlib.contextmanager
def server_process(model: str):
    """The server in a process of its own (so the clients' objects are not counted), its URL."""
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "serve_locally.py"), model, str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    try:
        assert "serving" in proc.stdout.readline()
        yield proc.pid, f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def stream_once(url: str, seconds: float) -> int:
    """Connect, receive stylized frames for `seconds`, hang up; the frames received."""
    pc, _camera, received, _messages, _channel = await connect(url)
    await asyncio.sleep(seconds)
    await pc.close()
    return len(received)


async def threads_back_to(pid: int, level: int, seconds: float = 5.0) -> tuple[int, float]:
    """The process's status once its thread count is back to `level` or below, or after `seconds`:
    a closed peer's codec threads end a moment after the server reports no peers, so a single read
    can catch one still ending, while a leaked thread never ends."""
    deadline = time.monotonic() + seconds
    while (status := process_status(pid))[0] > level and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return status


async def wait_for_no_peers(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            async with session.get(f"{url}/api/stats") as r:
                if (await r.json())["peers"] == 0:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError("the server kept a closed peer")


@pytest.mark.slow
def test_threads_and_memory_return_to_their_level_after_40_connections(small_model):
    """Each closed peer's codecs, threads and frames are freed when it closes, not whenever the
    cyclic collector runs: over 40 connect/stream/disconnect cycles the server's threads stay
    within 4 of their level after the first cycle, and its memory's floor (the least of ten
    cycles) rises less than 10 MB from the first ten cycles to the last ten. The floor, not the
    peak: a sample taken while the allocator still holds a freed peer's frames reads up to ~20 MB
    high and falls back the next cycle, while unfreed peers (before the fix, ~0.5 MB a cycle)
    raise every sample."""

    async def cycles(pid: int, url: str) -> list[tuple[int, float]]:
        levels = []
        for _ in range(40):
            assert await stream_once(url, 1.0) > 3
            await wait_for_no_peers(url)
            await asyncio.sleep(0.3)  # the codecs' threads end as they are freed
            levels.append(process_status(pid))
        return levels

    with server_process(small_model) as (pid, url):
        levels = asyncio.run(cycles(pid, url))
    (threads, _), *rest = levels
    print("threads", [t for t, _ in levels], "RSS MB", [round(m) for _, m in levels])
    assert max(t for t, _ in rest) <= threads + 4
    floor_first, floor_last = min(m for _, m in levels[:10]), min(m for _, m in levels[-10:])
    assert floor_last <= floor_first + 10


@pytest.mark.slow
def test_five_minutes_of_calls_leave_memory_flat(small_model):
    """A soak: calls of 5 to 20 s, one after another, for 5 minutes; the server's memory in the
    last minute is within 20 MB of its level after the first minute, and after each call its threads
    return to where they were after the first (within 5 s of the last peer leaving)."""

    async def soak(pid: int, url: str) -> list[tuple[float, int, float]]:
        samples, started, call, level = [], time.monotonic(), 0, 0
        while time.monotonic() - started < 300:
            assert await stream_once(url, 5.0 + 15.0 * (call % 4) / 3) > 10
            await wait_for_no_peers(url)
            if call == 0:
                await asyncio.sleep(1.0)
                level = process_status(pid)[0]
            call += 1
            samples.append((time.monotonic() - started, *await threads_back_to(pid, level)))
        return samples

    with server_process(small_model) as (pid, url):
        samples = asyncio.run(soak(pid, url))
    first = [s for s in samples if s[0] <= 60]
    last = [s for s in samples if s[0] >= 240]
    print("soak (s, threads, MB):", [(round(t), n, round(m)) for t, n, m in samples])
    assert max(m for _, _, m in last) <= max(m for _, _, m in first) + 20
    assert max(n for _, n, _ in samples) <= samples[0][1]


def test_a_closed_peer_is_freed_at_once_without_the_cyclic_collector(small_model):
    """With the collector off, a peer's connection, track and record are gone once it has closed."""
    import gc
    import weakref

    async def scenario():
        server = make_server(small_model)
        test_server, url = await serve(server)
        try:
            pc, _camera, received, _messages, _channel = await connect(url)
            for _ in range(50):
                if len(received) > 3:
                    break
                await asyncio.sleep(0.1)
            peer = next(iter(server.peers.values()))
            refs = [weakref.ref(peer), weakref.ref(peer.pc), weakref.ref(peer.track)]
            del peer
            gc.disable()
            try:
                await pc.close()
                for _ in range(50):
                    if not server.peers:
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.5)
                assert [ref() is None for ref in refs] == [True, True, True]
            finally:
                gc.enable()
        finally:
            await test_server.close()
            server.worker.stop()

    asyncio.run(scenario())


def test_bound_to_all_interfaces_the_printed_url_is_one_another_machine_can_open():
    import ifaddr

    from stylecast.server.app import server_urls

    own = {str(ip.ip) for adapter in ifaddr.get_adapters() for ip in adapter.ips if ip.is_IPv4}
    config = ServerConfig(host="0.0.0.0", port=8080, token="sixteen-chars-16")
    outward, local = server_urls(config)
    host = outward.removeprefix("http://").split(":")[0]
    assert host != "0.0.0.0" and (host in own - {"127.0.0.1"} or not own - {"127.0.0.1"})
    assert (
        outward.endswith(":8080/?token=sixteen-chars-16") and local == "http://127.0.0.1:8080/?token=sixteen-chars-16"
    )
    assert server_urls(ServerConfig(host="127.0.0.1", port=9000)) == ["http://127.0.0.1:9000/"]


def test_the_worker_stylizes_as_the_stylizer_does_flat_frames_included():
    """The server's batched turns use the stylizer's own preparation and finishing: a photo comes
    out as `Stylizer.one` makes it, and a flat frame gets the stylizer's flat answer, not the
    standard net's near-black."""
    from stylecast.realtime.stylizer import Stylizer

    photo = np.random.default_rng(7).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    flat = np.full((96, 128, 3), 128, np.uint8)
    worker = InferenceWorker(backend="torch", device="cpu", adaptive=False).start()

    async def stylize(frame):
        return await worker.submit(frame, ClientSettings(model="starry_night"))

    try:
        served = [asyncio.run(stylize(frame)) for frame in (photo, flat)]
    finally:
        worker.stop()
    stylizer = Stylizer.create("starry_night", "torch", "cpu", StyleOptions(upsample="bicubic"))
    for got, frame in zip(served, (photo, flat), strict=True):
        assert np.abs(got.astype(int) - stylizer.one(frame)).max() <= 1
    assert served[1].reshape(-1, 3).mean(axis=0).max() > 60
