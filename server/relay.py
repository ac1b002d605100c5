"""One stylized track shown to several participants of a room, without buffering.

aiortc's MediaRelay hands the same VideoFrame object to every consumer, and aiortc encodes on
executor threads, which then rebase the one frame's timestamps concurrently (and crashed
libvpx here). This relay reads the source once per frame and gives each consumer a VideoFrame
of its own, made from the newest stylized image; a consumer that falls behind skips to the
newest image instead of queueing.
"""

from __future__ import annotations

import asyncio

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

from stylecast.server.tracks import StylizedImage, StylizedTrack


class NewestRelay:
    def __init__(self, source: StylizedTrack):
        self.source = source
        self.image: StylizedImage | None = None
        self.sequence = 0  # increases with every new image
        self.ended = False
        self._changed = asyncio.Condition()
        self._task: asyncio.Task | None = None
        self.consumers: set[RelayedTrack] = set()

    def subscribe(self) -> RelayedTrack:
        track = RelayedTrack(self)
        self.consumers.add(track)
        if self._task is None:
            self._task = asyncio.ensure_future(self._pump())
        return track

    async def _pump(self) -> None:
        try:
            while True:
                image = await self.source.next_image()
                async with self._changed:
                    self.image, self.sequence = image, self.sequence + 1
                    self._changed.notify_all()
        except MediaStreamError:
            pass
        finally:
            async with self._changed:
                self.ended = True
                self._changed.notify_all()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for track in list(self.consumers):
            track.stop()


class RelayedTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, relay: NewestRelay):
        super().__init__()
        self.relay = relay
        self.seen = 0

    async def recv(self) -> VideoFrame:
        relay = self.relay
        async with relay._changed:
            await relay._changed.wait_for(
                lambda: relay.sequence > self.seen or relay.ended or self.readyState != "live"
            )
            if relay.ended or self.readyState != "live" or relay.image is None:
                raise MediaStreamError
            (rgb, pts, time_base), self.seen = relay.image, relay.sequence
        frame = VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame

    def stop(self) -> None:
        super().stop()
        self.relay.consumers.discard(self)
        asyncio.ensure_future(self._wake())  # a recv() waiting for the next image returns now

    async def _wake(self) -> None:
        async with self.relay._changed:
            self.relay._changed.notify_all()
