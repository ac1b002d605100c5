"""stylecast serve: the WebRTC server and its call rooms."""

from __future__ import annotations

import argparse
from pathlib import Path

from stylecast.cli.common import check_target_fps, finite_float
from stylecast.core.errors import InputError


def add_serve(p: argparse.ArgumentParser) -> None:
    """stylecast serve"""
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind; anything but loopback requires an access token"
    )
    p.add_argument("--port", type=int, default=8080, help="TCP port")
    p.add_argument("--token", default=None, help="access token (generated and printed when binding beyond loopback)")
    p.add_argument(
        "--model", action="append", default=None, help="offer this model (repeatable); default: all shipped models"
    )
    p.add_argument(
        "--style-image",
        action="append",
        default=None,
        help="a style picture arbitrary-style models offer, named by its file (repeatable); without one they are left out",
    )
    p.add_argument("--backend", default="auto", help="inference backend")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for the model (default: every core but one)")
    p.add_argument("--target-fps", type=finite_float, default=30.0, help="frame rate the resolution governor aims for")
    p.add_argument(
        "--fixed-resolution", action="store_true", help="never change the processing resolution automatically"
    )
    p.add_argument("--max-peers", type=int, default=8, help="concurrent connections")
    p.add_argument("--max-rooms", type=int, default=16, help="concurrent call rooms")
    p.add_argument("--max-room-size", type=int, default=4, help="participants per room")
    p.add_argument(
        "--max-frame-wait-ms",
        type=finite_float,
        default=50.0,
        help="a camera frame that waited this long gives way to a newer one (0: always the newest frame)",
    )
    p.add_argument(
        "--ice-local-only",
        action="store_true",
        help="keep WebRTC media on this machine: host candidates on loopback and its own addresses, no STUN"
        " (tests, local benchmarks)",
    )
    p.set_defaults(run=cmd_serve)


def check_serve_limits(args: argparse.Namespace) -> None:
    """Refuses `stylecast serve` numbers the server cannot run with, before anything loads."""
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be between 0 and 65535, not {args.port}")
    check_target_fps(args.target_fps)
    if not 0 <= args.max_frame_wait_ms <= 1000:
        raise InputError(f"--max-frame-wait-ms must be between 0 and 1000, got {args.max_frame_wait_ms}")
    for flag, value, least in (
        ("--threads", args.threads, 1),
        ("--max-peers", args.max_peers, 1),
        ("--max-rooms", args.max_rooms, 1),
        ("--max-room-size", args.max_room_size, 2),
    ):
        if value is not None and value < least:
            raise InputError(f"{flag} must be at least {least}, not {value}")


def cmd_serve(args: argparse.Namespace) -> int:
    import torch

    from stylecast.core.images import read_rgb
    from stylecast.models.checkpoint import Family
    from stylecast.models.zoo import DEFAULT_MODEL, SHIPPED
    from stylecast.realtime.stylizer import load_model

    try:
        from stylecast.server.app import ServerConfig, run_server
        from stylecast.server.worker import InferenceWorker, serving_threads
    except ImportError as exc:
        raise InputError(
            f"the server needs its extra: pip install 'stylecast[server]' ({exc.name} is missing)"
        ) from None
    check_serve_limits(args)
    models = args.model or [m for m in SHIPPED if SHIPPED[m].path.is_file()]
    checkpoints = {name: load_model(name) for name in models}  # fail now on an unknown model
    style_images = {Path(p).stem: read_rgb(p) for p in args.style_image or []}  # named for the picker
    if not style_images:
        if args.model and any(c.family is Family.ARBITRARY for c in checkpoints.values()):
            raise InputError("arbitrary-style models take style pictures: give --style-image PAINTING.jpg")
        models = [m for m in models if checkpoints[m].family is not Family.ARBITRARY]  # nothing to offer them
    config = ServerConfig(
        host=args.host,
        port=args.port,
        token=args.token,
        models=models,
        default_model=DEFAULT_MODEL if DEFAULT_MODEL in models else models[0],
        max_peers=args.max_peers,
        max_rooms=args.max_rooms,
        max_room_size=args.max_room_size,
        ice_local_only=args.ice_local_only,
        max_frame_wait_ms=args.max_frame_wait_ms,
    )
    torch.set_num_threads(args.threads or serving_threads())  # the model's share of the CPU, for every backend
    worker = InferenceWorker(
        args.backend,
        args.device,
        args.target_fps,
        adaptive=not args.fixed_resolution,
        style_images=style_images,
        checkpoints={name: checkpoints[name] for name in models},
    )
    worker.load(config.default_model)
    worker.start()
    try:
        run_server(config, worker)
    finally:
        worker.stop()
    return 0
