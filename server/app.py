"""`stylecast serve`: an aiohttp + aiortc server that stylizes browser cameras over WebRTC.

Routes
    GET  /                 the page: your camera and its stylized stream side by side
    GET  /room/<name>      a call room: everyone sees the others stylized
    GET  /static/...       the page's files (no path can leave the folder)
    GET  /api/config       models, limits and defaults for the page
    GET  /api/stats        server counters (peers, rooms, worker turns, processing size)
    POST /offer            {"sdp", "type": "offer", "settings"?, "stamp_rows"?} -> {"sdp", "type"}
    POST /room/<name>/offer  the same, joining the room

Signalling is one HTTP round trip, as in aiortc's examples: the page gathers all its ICE
candidates before sending the offer and aiortc gathers its own before answering (aiortc has
no trickle ICE). Controls travel on a data channel named "control" as JSON messages.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from stylecast.core.errors import InputError
from stylecast.realtime.styles import parse_style_mix
from stylecast.server.relay import NewestRelay
from stylecast.server.tracks import StylizedTrack
from stylecast.server.worker import ClientSettings, InferenceWorker

log = logging.getLogger("stylecast.server")
STATIC = Path(__file__).parent / "static"
ROOM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
TOKEN_COOKIE = "stylecast_token"
MIN_TOKEN_LENGTH = 16


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 8080
    token: str | None = None  # required from clients when set; set automatically off loopback
    models: list[str] = field(default_factory=list)  # what the style picker offers
    default_model: str = ""
    max_peers: int = 8
    max_rooms: int = 16
    max_room_size: int = 4
    max_offer_bytes: int = 64 * 1024
    max_frame_pixels: int = 1280 * 720  # larger camera frames are scaled down before the model
    max_frame_wait_ms: float = 50.0  # a camera frame this old gives way to a newer one (tracks.FrameMailbox)
    # a peer that does not connect in this time is closed: ICE on a LAN takes a second or two, and a
    # slot held by an offer that never connects keeps a real caller out
    connect_timeout: float = 10.0
    stats_interval: float = 0.5  # seconds between stats messages on the data channel
    ice_local_only: bool = False  # media never leaves this machine (tests, local benchmarks)

    def __post_init__(self) -> None:
        if self.token is not None and len(self.token) < MIN_TOKEN_LENGTH:
            raise InputError(f"--token must be at least {MIN_TOKEN_LENGTH} characters (a guessable one guards nothing)")
        if self.token is None and not is_loopback(self.host):
            self.token = secrets.token_urlsafe(16)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def freeze_startup_objects(app: web.Application) -> None:
    """Moves everything alive at start (modules, models, codec tables: most of the heap) out of
    the garbage collector's reach. Its full passes walk every tracked object while holding the
    GIL: in a 40 s stream (benchmarks/webrtc_latency.py) one took 125 ms, stalling every
    stream and the worker; objects made later are collected as usual."""
    gc.collect()
    gc.freeze()


def parse_client_json(text: str) -> Any:
    """json.loads for a client's message; JSON nested deeper than the parser's recursion limit
    (a few kB of brackets) is a ValueError like any other malformed message."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


class BadRequest(web.HTTPBadRequest):
    def __init__(self, message: str):
        super().__init__(text=json.dumps({"error": message}), content_type="application/json")


@dataclass
class TokenBucket:
    """At most `rate` events a second on average, `burst` at once (a slider dragged sends a few
    dozen settings messages a second; a flood of thousands would starve the other peers)."""

    rate: float = 30.0
    burst: float = 60.0
    tokens: float = 60.0
    stamp: float = field(default_factory=time.monotonic)
    dropped: int = 0  # since the bucket was last full

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= self.burst:  # full again: a later flood is a new one
            self.dropped = 0
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.dropped += 1
        return False


@dataclass
class Peer:
    id: str
    pc: RTCPeerConnection
    settings: ClientSettings
    stamp_rows: int
    room: str | None = None
    track: StylizedTrack | None = None
    channel: Any = None
    tasks: list[asyncio.Task] = field(default_factory=list)
    controls: TokenBucket = field(default_factory=TokenBucket)


@dataclass
class Room:
    name: str
    peers: dict[str, Peer] = field(default_factory=dict)
    relays: dict[str, NewestRelay] = field(default_factory=dict)  # peer id -> its stylized video


_aioice_host_addresses: Callable[..., list[str]] | None = None  # aioice's own, before the patch below


def gather_ice_on_this_machine() -> frozenset[str]:
    """Make aiortc gather host candidates on 127.0.0.1 and this machine's IPv4 addresses only.

    aioice leaves loopback out (Chromium offers it when asked), and Firefox offers no loopback
    candidates whatever its prefs say, so both are gathered. Returns the addresses. The patch is
    process-wide and stays: it is for test and benchmark processes (`ice_local_only`).
    """
    global _aioice_host_addresses
    import aioice.ice

    if _aioice_host_addresses is None:
        _aioice_host_addresses = aioice.ice.get_host_addresses
    addresses = ["127.0.0.1", *_aioice_host_addresses(use_ipv4=True, use_ipv6=False)]
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: addresses if use_ipv4 else []
    return frozenset(addresses)


def candidates_on(addresses: frozenset[str], sdp: str) -> str:
    """Drop the offer's ICE candidates whose address is not one of `addresses`."""

    def keep(line: str) -> bool:
        if not line.startswith("a=candidate:"):
            return True
        fields = line.split()
        return len(fields) > 4 and fields[4] in addresses

    return "\r\n".join(line for line in sdp.split("\r\n") if keep(line))


class StylecastServer:
    def __init__(self, config: ServerConfig, worker: InferenceWorker):
        self.local_addresses = gather_ice_on_this_machine() if config.ice_local_only else None
        self.config = config
        self.worker = worker
        self.peers: dict[str, Peer] = {}
        self.rooms: dict[str, Room] = {}
        self.closed_peers = 0

    # --- the aiohttp application ---------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard], client_max_size=self.config.max_offer_bytes)
        app.router.add_get("/", self.page("index.html"))
        app.router.add_get("/room/{name}", self.room_page)
        app.router.add_get("/api/config", self.api_config)
        app.router.add_get("/api/stats", self.api_stats)
        app.router.add_post("/offer", self.offer)
        app.router.add_post("/room/{name}/offer", self.offer)
        app.router.add_static("/static", STATIC, follow_symlinks=False)
        app.on_startup.append(freeze_startup_objects)
        app.on_shutdown.append(self.shutdown)
        return app

    @web.middleware
    async def guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Token check (when one is set) and security headers on every response."""
        token = self.config.token
        if token is not None:
            given = (
                request.query.get("token")
                or request.headers.get("X-Stylecast-Token")
                or request.cookies.get(TOKEN_COOKIE)
            )
            if not given or not secrets.compare_digest(given.encode(), token.encode()):  # str needs ASCII
                raise web.HTTPUnauthorized(
                    text=json.dumps({"error": "access token required"}), content_type="application/json"
                )
        response = await handler(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if token is not None and request.query.get("token"):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
        return response

    def page(self, name: str) -> Any:
        async def handler(request: web.Request) -> web.FileResponse:
            return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-store"})

        return handler

    async def room_page(self, request: web.Request) -> web.StreamResponse:
        if not ROOM_NAME.match(request.match_info["name"]):
            raise BadRequest("room names are 1-32 letters, digits, '-' or '_'")
        return await self.page("room.html")(request)

    async def api_config(self, request: web.Request) -> web.Response:
        # off the event loop: the first call reads each model's checkpoint from disk
        styles = await asyncio.to_thread(lambda: {name: self.worker.styles(name) for name in self.config.models})
        return web.json_response(
            {
                "models": self.config.models,
                "styles": styles,
                "default_model": self.config.default_model,
                "max_room_size": self.config.max_room_size,
            }
        )

    async def api_stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "peers": len(self.peers),
                "rooms": {name: len(room.peers) for name, room in self.rooms.items()},
                "closed_peers": self.closed_peers,
                "worker_turns": self.worker.turns,
                "worker_frames": self.worker.frames,
                "processing_max_size": self.worker.processing_max_size,
                "tracks": {pid: p.track.stats.as_dict() for pid, p in self.peers.items() if p.track is not None},
            }
        )

    # --- signalling --------------------------------------------------------------------------

    async def offer(self, request: web.Request) -> web.Response:
        room_name = request.match_info.get("name")
        if room_name is not None and not ROOM_NAME.match(room_name):
            raise BadRequest("room names are 1-32 letters, digits, '-' or '_'")
        body = await self.read_offer(request)
        if len(self.peers) >= self.config.max_peers:
            raise web.HTTPServiceUnavailable(
                text=json.dumps({"error": "too many peers; try again later"}), content_type="application/json"
            )
        settings = self.parse_settings(body.get("settings") or {}, ClientSettings(self.config.default_model))
        stamp_rows = body.get("stamp_rows", 0)
        if isinstance(stamp_rows, bool) or not isinstance(stamp_rows, int) or not 0 <= stamp_rows <= 64:
            raise BadRequest("stamp_rows must be an integer from 0 to 64")
        # the room is made only for a valid offer: a refused one must not hold a room slot
        room = None
        if room_name is not None:
            room = self.rooms.get(room_name)
            if room is None:
                if len(self.rooms) >= self.config.max_rooms:
                    raise web.HTTPServiceUnavailable(
                        text=json.dumps({"error": "too many rooms"}), content_type="application/json"
                    )
                room = self.rooms[room_name] = Room(room_name)
            if len(room.peers) >= self.config.max_room_size:
                raise web.HTTPConflict(
                    text=json.dumps({"error": f"room {room_name} is full"}), content_type="application/json"
                )
        sdp = body["sdp"]
        if self.local_addresses is None:
            pc = RTCPeerConnection()
        else:  # host candidates only: no STUN server, no remote candidate off this machine
            sdp = candidates_on(self.local_addresses, sdp)
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peer = Peer(uuid.uuid4().hex[:12], pc, settings, stamp_rows, room_name)
        self.peers[peer.id] = peer
        if room is not None:
            room.peers[peer.id] = peer
        self.wire(peer)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            self.attach_outgoing(peer)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # noqa: BLE001 - aiortc raises many types for a bad SDP
            await self.close_peer(peer)
            raise BadRequest(f"malformed SDP offer: {type(exc).__name__}: {exc}".strip()[:300]) from None
        peer.tasks.append(asyncio.ensure_future(self.expire_if_unconnected(peer)))
        log.info("peer %s connected%s", peer.id, f" to room {room_name}" if room_name else "")
        return web.json_response({"sdp": pc.localDescription.sdp, "type": pc.localDescription.type, "id": peer.id})

    async def read_offer(self, request: web.Request) -> dict[str, Any]:
        if request.content_length is not None and request.content_length > self.config.max_offer_bytes:
            raise web.HTTPRequestEntityTooLarge(self.config.max_offer_bytes, request.content_length)
        try:
            body = parse_client_json(await request.text())
        except web.HTTPRequestEntityTooLarge:
            raise
        except ValueError:  # UnicodeDecodeError included
            raise BadRequest('the body must be JSON: {"sdp": ..., "type": "offer"}') from None
        if not isinstance(body, dict) or body.get("type") != "offer" or not isinstance(body.get("sdp"), str):
            raise BadRequest('expected {"sdp": <string>, "type": "offer"}')
        if not body["sdp"].startswith("v=0"):
            raise BadRequest("malformed SDP offer: it must start with v=0")
        return body

    def parse_settings(self, data: Any, base: ClientSettings) -> ClientSettings:
        """Validated settings from a client message; raises ValueError naming the bad field."""
        if not isinstance(data, dict):
            raise BadRequest("settings must be a JSON object")
        try:
            return apply_settings(base, data, self.config.models, self.worker.styles)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    # --- media ---------------------------------------------------------------------------------

    def wire(self, peer: Peer) -> None:
        pc = peer.pc

        @pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind != "video" or peer.track is not None:
                return
            peer.track = StylizedTrack(
                track,
                self.worker,
                peer.settings,
                self.config.max_frame_pixels,
                peer.stamp_rows,
                self.config.max_frame_wait_ms / 1000,
            )
            if peer.room is not None:
                self.connect_room(self.rooms[peer.room], peer)

        @pc.on("datachannel")
        def on_datachannel(channel: Any) -> None:
            peer.channel = channel

            @channel.on("message")
            def on_message(message: Any) -> None:
                self.handle_control(peer, message)

            peer.tasks.append(asyncio.ensure_future(self.send_stats(peer)))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close_peer(peer)

    def attach_outgoing(self, peer: Peer) -> None:
        """Before answering: the stylized track goes back on the peer's own video transceiver
        (its camera's); in a room, its other video transceivers are send slots that show the
        other participants. Slots are filled as people join, with no renegotiation."""
        videos = [t for t in peer.pc.getTransceivers() if t.kind == "video"]
        if peer.track is None or not videos:
            raise ValueError("the offer sends no camera video")
        own, slots = videos[0], videos[1:]
        own.direction = "sendrecv"
        if peer.room is None:
            own.sender.replaceTrack(peer.track)
            return
        own.sender.replaceTrack(self.rooms[peer.room].relays[peer.id].subscribe())
        for slot in slots:
            slot.direction = "sendonly"

    def connect_room(self, room: Room, peer: Peer) -> None:
        """Give `peer` everyone else's stylized track, and everyone else `peer`'s."""
        assert peer.track is not None
        room.relays[peer.id] = NewestRelay(peer.track)
        for other in room.peers.values():
            if other is peer or other.id not in room.relays:
                continue
            self.assign_slot(other, room.relays[peer.id].subscribe())
            self.assign_slot(peer, room.relays[other.id].subscribe())

    @staticmethod
    def assign_slot(peer: Peer, track: Any) -> None:
        for transceiver in [t for t in peer.pc.getTransceivers() if t.kind == "video"][1:]:
            if transceiver.sender.track is None:
                transceiver.sender.replaceTrack(track)
                return

    def handle_control(self, peer: Peer, message: Any) -> None:
        if not peer.controls.take():
            if peer.controls.dropped == 1:  # one reply per flood, not one per message
                log.info("peer %s sends control messages too fast; dropping them", peer.id)
                self.reply(peer, {"type": "error", "message": "too many control messages; some were dropped"})
            return
        try:
            data = parse_client_json(message) if isinstance(message, str) else None
            if not isinstance(data, dict) or data.get("type") != "settings":
                raise ValueError('expected {"type": "settings", ...}')
            updated = apply_settings(peer.settings, data, self.config.models, self.worker.styles)
        except ValueError as exc:
            reply = {"type": "error", "message": str(exc)}
        else:
            vars(peer.settings).update(vars(updated))  # in place: the peer's track holds this object
            reply = {"type": "settings", **vars(peer.settings)}
        self.reply(peer, reply)

    @staticmethod
    def reply(peer: Peer, message: dict[str, Any]) -> None:
        if peer.channel is not None and peer.channel.readyState == "open":
            peer.channel.send(json.dumps(message))

    async def send_stats(self, peer: Peer) -> None:
        while peer.channel is not None and peer.channel.readyState != "closed":
            await asyncio.sleep(self.config.stats_interval)
            if peer.channel.readyState == "open" and peer.track is not None:
                peer.channel.send(
                    json.dumps(
                        {
                            "type": "stats",
                            **peer.track.stats.as_dict(),
                            "processing_max_size": self.worker.processing_max_size,
                        }
                    )
                )

    async def expire_if_unconnected(self, peer: Peer) -> None:
        await asyncio.sleep(self.config.connect_timeout)
        if peer.pc.connectionState != "connected":
            log.info("peer %s did not connect in %.0f s; closing", peer.id, self.config.connect_timeout)
            await self.close_peer(peer)

    async def close_peer(self, peer: Peer) -> None:
        if self.peers.pop(peer.id, None) is None:
            return
        self.closed_peers += 1
        # a cancelled task keeps its CancelledError, whose traceback holds the frames that hold
        # the peer: wait for them, then let go, so the peer is freed now and not at the next
        # run of the cyclic collector (which the frozen start-up objects make rare)
        others = [task for task in peer.tasks if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        peer.tasks.clear()
        if peer.track is not None:
            peer.track.stop()
        if peer.room is not None and peer.room in self.rooms:
            room = self.rooms[peer.room]
            room.peers.pop(peer.id, None)
            relay = room.relays.pop(peer.id, None)
            if relay is not None:
                for other in room.peers.values():  # free the slots that showed this peer
                    for transceiver in other.pc.getTransceivers()[1:]:
                        if transceiver.sender.track in relay.consumers:
                            transceiver.sender.replaceTrack(None)
                relay.stop()
            if not room.peers:
                del self.rooms[peer.room]
        await peer.pc.close()
        release_connection(peer.pc, peer.channel)
        peer.channel = peer.track = None
        log.info("peer %s closed", peer.id)

    async def shutdown(self, app: web.Application) -> None:
        await asyncio.gather(*(self.close_peer(p) for p in list(self.peers.values())))


def release_connection(pc: RTCPeerConnection, channel: Any) -> None:
    """Break the reference cycles a closed connection leaves (its transports' listeners are bound
    methods of the connection; our handlers are closures over it), so that it, its codecs and
    their threads are freed at once by reference counting rather than by the cyclic collector."""
    transceivers = pc.getTransceivers()
    transports = {t.sender.transport for t in transceivers} | {t.receiver.transport for t in transceivers}
    if pc.sctp is not None:
        transports.add(pc.sctp.transport)
    emitters: list[Any] = [pc, channel]
    for dtls in filter(None, transports):
        emitters += [dtls, dtls.transport, dtls.transport.iceGatherer]
    for emitter in filter(None, emitters):
        emitter.remove_all_listeners()


def apply_settings(
    base: ClientSettings, data: dict[str, Any], models: list[str], styles_of: Callable[[str], list[str]]
) -> ClientSettings:
    """A copy of `base` with the fields of `data` applied; ValueError names a bad field."""
    settings = ClientSettings(base.model, base.strength, base.preserve_color, base.max_size, base.style)
    if "model" in data:
        if data["model"] not in models:
            raise ValueError(f"unknown model {data['model']!r}")
        if data["model"] != settings.model:
            settings.style = None  # styles belong to a model
        settings.model = data["model"]
    if "style" in data:
        style = data["style"]
        names = styles_of(settings.model)
        if style is not None and (not isinstance(style, str) or not names):
            raise ValueError(f"model {settings.model!r} has one style; 'style' applies to multi-style models")
        if style is not None:
            try:
                parse_style_mix(style, names)
            except InputError as exc:
                raise ValueError(str(exc)) from None
        settings.style = style
    if "strength" in data:
        strength = data["strength"]
        if not isinstance(strength, (int, float)) or isinstance(strength, bool) or not 0 <= strength <= 1:
            raise ValueError("strength must be a number from 0 to 1")
        settings.strength = float(strength)
    if "preserve_color" in data:
        if not isinstance(data["preserve_color"], bool):
            raise ValueError("preserve_color must be true or false")
        settings.preserve_color = data["preserve_color"]
    if "max_size" in data:
        size = data["max_size"]
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or not 64 <= size <= 4096):
            raise ValueError("max_size must be null (automatic) or an integer from 64 to 4096")
        settings.max_size = size
    return settings


ALL_INTERFACES = ("0.0.0.0", "::", "")


def reachable_address(host: str) -> str:
    """The address other machines open for `host`: itself, or for all interfaces this machine's
    first IPv4 address that is not loopback (its name when it has none)."""
    if host not in ALL_INTERFACES:
        return host
    import ifaddr  # aioice's own address lister, installed with the server

    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if ip.is_IPv4 and not str(ip.ip).startswith("127."):
                return str(ip.ip)
    return socket.gethostname()


def server_urls(config: ServerConfig) -> list[str]:
    """The page's address for other machines, and on this machine when bound to all interfaces."""
    query = f"?token={config.token}" if config.token else ""
    urls = [f"http://{reachable_address(config.host)}:{config.port}/{query}"]
    if config.host in ALL_INTERFACES:
        urls.append(f"http://127.0.0.1:{config.port}/{query}")
    return urls


def run_server(config: ServerConfig, worker: InferenceWorker) -> None:
    server = StylecastServer(config, worker)
    url, *local = server_urls(config)

    bound = False

    def announce(_aiohttp_banner: str) -> None:  # aiohttp calls it once the socket is bound
        nonlocal bound
        bound = True
        also = f" (on this machine also {local[0]})" if local else ""
        print(f"stylecast: serving {len(config.models)} model(s) at {url}{also}", flush=True)

    try:
        web.run_app(server.app(), host=config.host, port=config.port, print=announce, access_log=None)
    except OSError as exc:
        if bound:
            raise
        # the address is taken, not this machine's, or a privileged port
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise InputError(f"cannot listen on {config.host}:{config.port}: {reason}") from None
