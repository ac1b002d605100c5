"""The commands that stylize: video, image, webcam, demo, sheet."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stylecast.cli.common import (
    EXIT_USAGE,
    add_model_flags,
    build_stylizer,
    check_style_options,
    check_target_fps,
    emit,
    finite_float,
    image_files,
    parse_size,
)
from stylecast.core.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from stylecast.realtime.stylizer import Stylizer


def add_video(p: argparse.ArgumentParser) -> None:
    """stylecast video IN -o OUT"""
    p.add_argument("input", help="video file")
    p.add_argument("-o", "--output", required=True, help="output video (.mp4, .m4v, .mkv, .mov, .webm)")
    p.add_argument("--batch-size", type=int, default=1, help="frames per model call")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="model calls at once, each on its share of the CPU's threads (default: 2 on a CPU, 1 on a GPU)",
    )
    p.add_argument(
        "--video-codecs",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="decode and encode on the CPU, or with NVDEC/NVENC (falling back to the CPU where they are "
        "missing); auto: cuda when the model runs on a CUDA GPU",
    )
    add_model_flags(p)
    p.set_defaults(run=cmd_video)


def cmd_video(args: argparse.Namespace) -> int:
    from stylecast.core.atomic import check_outputs_spare_inputs
    from stylecast.core.machine import default_threads
    from stylecast.realtime.pipeline import default_workers, process_video
    from stylecast.realtime.torch_free import onnx_without_torch
    from stylecast.realtime.video import VIDEO_SUFFIXES, VideoReader

    output = Path(args.output)
    if output.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(f"output {output} must end in one of {', '.join(sorted(VIDEO_SUFFIXES))}")
    check_outputs_spare_inputs([(Path(args.input), output)])
    if not 1 <= args.batch_size <= 64:
        raise InputError(f"--batch-size must be between 1 and 64, got {args.batch_size}")
    if args.workers is not None and not 1 <= args.workers <= 16:
        raise InputError(f"--workers must be between 1 and 16, got {args.workers}")
    check_style_options(args)
    reader = VideoReader(args.input)  # the frame size, and a one-line error for a bad file before any model loads
    reader.close()
    threads = default_threads()
    cpu_workers = args.workers or default_workers("cpu", threads)
    stylize = None
    if args.style is None and args.style_image is None and args.transform is None:
        stylize = onnx_without_torch(
            args.model,
            args.backend,
            args.device,
            (reader.height, reader.width),
            max(1, threads // cpu_workers),
            args.strength,
            reduced=args.max_size is not None or args.scale != 1.0,
            preserve_color=args.preserve_color,
        )
    with contextlib.ExitStack() as threads_given_back:
        if stylize is not None:  # ONNX Runtime with numpy around it: torch is never imported
            run: Callable[[list[np.ndarray]], list[np.ndarray]] = stylize
            workers, backend, device, on_gpu = cpu_workers, stylize.name, stylize.device, False
        else:
            stylizer, workers = threads_given_back.enter_context(stylizer_with_threads_shared(args))
            run, backend, device = stylizer, stylizer.backend.name, str(stylizer.backend.device)
            on_gpu = stylizer.backend.device.type == "cuda"
        result = process_video(
            args.input,
            output,
            run,
            batch_size=args.batch_size,
            progress=not args.quiet,
            hardware_codecs=args.video_codecs == "cuda" or (args.video_codecs == "auto" and on_gpu),
            workers=workers,
        )
    data = dataclasses.asdict(result) | {
        "model": args.model,
        "backend": backend,
        "torch": stylize is None,
        "throughput_fps": result.throughput,
    }
    emit(
        args,
        data,
        f"{result.input} -> {result.output}: {result.frames} frames {result.width}x{result.height} "
        f"at {result.fps:.3g} fps{', audio kept' if result.audio else ''} "
        f"in {result.seconds:.1f} s ({result.throughput:.1f} frames/s, {backend} on {device}, "
        f"{result.decoder} -> {result.encoder})"
        + (f"; {result.decode_errors} damaged packet(s) skipped" if result.decode_errors else ""),
    )
    return 0


@contextlib.contextmanager
def stylizer_with_threads_shared(args: argparse.Namespace) -> Iterator[tuple[Stylizer, int]]:
    """The Stylizer of `args` and its model calls at once (`--workers`), torch's threads shared
    out among them before any backend sizes its pool, and given back after (for callers that go
    on in this process)."""
    import torch

    from stylecast.core.device import resolve_device
    from stylecast.realtime.pipeline import default_workers

    threads = torch.get_num_threads()
    workers = args.workers or default_workers(resolve_device(args.device).type, threads)
    torch.set_num_threads(max(1, threads // workers))
    try:
        yield build_stylizer(args), workers
    finally:
        torch.set_num_threads(threads)


def add_image(p: argparse.ArgumentParser) -> None:
    """stylecast image IN... -o OUT"""
    p.add_argument("inputs", nargs="+", help="image files or folders")
    p.add_argument("-o", "--output", required=True, help="output file (one input) or folder")
    add_model_flags(p)
    p.set_defaults(run=cmd_image)


def image_jobs(inputs: list[str], output: str) -> list[tuple[Path, Path]]:
    """(input, output) pairs: one file to one file, or many (or a folder) into a folder."""
    files = image_files(inputs)
    out = Path(output)
    if len(files) == 1 and not out.is_dir() and out.suffix:
        return [(files[0], out)]
    if not out.is_dir():
        if out.suffix:
            raise InputError(f"{len(files)} inputs need an output folder, but {out} is a file name")
        if not out.parent.is_dir():
            raise InputError(f"output folder does not exist: {out.parent}")
        try:
            out.mkdir()
        except OSError as exc:
            raise InputError(f"cannot make the output folder {out}: {exc.strerror}") from None
    return [(f, out / f"{f.stem}.png") for f in files]


def has_colour(image: np.ndarray) -> bool:
    """More than a grey picture's rounding between its channels (H x W x 3 uint8)."""
    import numpy as np

    spread = image.max(axis=2).astype(np.int16) - image.min(axis=2)
    return float(np.percentile(spread, 90)) > 8


def cmd_image(args: argparse.Namespace) -> int:
    import time

    from stylecast.core.atomic import check_outputs_spare_inputs
    from stylecast.core.images import read_rgb, write_rgb

    jobs = image_jobs(args.inputs, args.output)
    check_outputs_spare_inputs(jobs)
    stylizer = build_stylizer(args)
    results: list[dict[str, Any]] = []
    failed = 0
    colorizer, noted = stylizer.checkpoint.contract.transform == "grayscale", False
    for source, target in jobs:
        started = time.perf_counter()
        try:
            image = read_rgb(source)
            if colorizer and not noted and has_colour(image):
                print(
                    f"stylecast: note: {args.model} colours a picture from its grey levels: {source.name}'s own colours"
                    " are replaced (--strength 0.5 keeps half of them)",
                    file=sys.stderr,
                )
                noted = True
            write_rgb(target, stylizer.one(image))
        except InputError as exc:
            failed += 1
            print(f"stylecast: error: {exc}", file=sys.stderr)
            results.append({"input": str(source), "error": str(exc)})
            continue
        h, w = image.shape[:2]
        seconds = time.perf_counter() - started
        results.append({"input": str(source), "output": str(target), "size": [w, h], "seconds": round(seconds, 3)})
        if not args.json:
            print(f"{source} -> {target} ({w}x{h}, {seconds:.2f} s)")
    if args.json:
        print(json.dumps({"model": args.model, "backend": stylizer.backend.name, "images": results}, indent=2))
    return EXIT_USAGE if failed else 0


def add_webcam(p: argparse.ArgumentParser) -> None:
    """stylecast webcam"""
    p.add_argument("--camera", type=int, default=0, help="camera index")
    p.add_argument("--source", default=None, help="instead of the camera: demo | VIDEO | IMAGE | camera INDEX")
    p.add_argument(
        "--output", default=None, help="also record the stylized stream: a video file, or a folder for numbered PNGs"
    )
    p.add_argument("--no-window", action="store_true", help="do not open a window")
    p.add_argument(
        "--virtual-cam", action="store_true", help="also feed a virtual camera that video-call apps can pick"
    )
    p.add_argument(
        "--virtual-cam-device",
        default=None,
        help="virtual camera device (e.g. /dev/video10); default: the first free one",
    )
    p.add_argument("--no-overlay", action="store_true", help="no fps / latency text on the frames")
    p.add_argument("--seconds", type=finite_float, default=None, help="stop after this many seconds")
    p.add_argument(
        "--target-fps",
        type=finite_float,
        default=None,
        help="frame rate the resolution governor aims for (default: the source's own)",
    )
    p.add_argument(
        "--fixed-resolution",
        action="store_true",
        help="never lower the processing resolution when the model is slower than the source",
    )
    add_model_flags(p)
    p.set_defaults(run=cmd_webcam)


def cmd_webcam(args: argparse.Namespace) -> int:
    from stylecast.realtime.governor import AdaptiveStylizer
    from stylecast.realtime.live import run_live
    from stylecast.realtime.sinks import ImageSequenceSink, LiveVideoSink, NullSink, VirtualCameraSink, WindowSink
    from stylecast.realtime.sources import open_source
    from stylecast.realtime.video import VIDEO_SUFFIXES

    if args.target_fps is not None:  # None: the source's own rate
        check_target_fps(args.target_fps)
    if args.seconds is not None and args.seconds <= 0:
        raise InputError(f"--seconds must be positive, got {args.seconds}")
    source = open_source(args.source if args.source is not None else str(args.camera))
    stylizer = build_stylizer(args)
    adaptive = None if args.fixed_resolution else AdaptiveStylizer(stylizer, args.target_fps or source.fps)
    sinks: list[Any] = []
    try:
        if args.virtual_cam:
            sinks.append(VirtualCameraSink(source.fps, args.virtual_cam_device))
        if not args.no_window:
            sinks.append(WindowSink())
        if args.output and Path(args.output).suffix.lower() in VIDEO_SUFFIXES:
            sinks.append(LiveVideoSink(args.output, source.fps))
        elif args.output:
            sinks.append(ImageSequenceSink(args.output))
        if not sinks:
            sinks.append(NullSink())
        stats = run_live(
            source,
            adaptive or stylizer.one,
            sinks,
            seconds=args.seconds,
            overlay=not args.no_overlay,
            status=adaptive.describe if adaptive else None,
        )
    except BaseException:
        for sink in sinks:
            getattr(sink, "abort", sink.close)()
        raise
    for sink in sinks:
        sink.close()
    data = dataclasses.asdict(stats) | {
        "model": args.model,
        "backend": stylizer.backend.name,
        "output": args.output,
        "processing_max_size": stylizer.options.max_size,  # at the end (None: the frame's own size)
    }
    emit(
        args,
        data,
        f"{stats.frames} frames in {stats.seconds:.1f} s ({stats.fps:.1f} fps), {stats.dropped} dropped, "
        f"latency p50 {stats.latency_ms_p50:.0f} ms, p95 {stats.latency_ms_p95:.0f} ms",
    )
    return 0


def add_demo(p: argparse.ArgumentParser) -> None:
    """stylecast demo"""
    p.add_argument(
        "-o", "--output", default="stylecast-demo.mp4", help="stylized clip; a side-by-side PNG is written beside it"
    )
    p.add_argument("--seconds", type=finite_float, default=4.0, help="clip length")
    p.add_argument("--size", default="640x360", help="clip size WIDTHxHEIGHT")
    p.add_argument(
        "--camera", type=int, default=None, help="record from this camera index instead of the generated scene"
    )
    add_model_flags(p)
    p.set_defaults(run=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from stylecast.realtime.demo_run import run_demo

    stylizer = build_stylizer(args)
    summary = run_demo(
        stylizer,
        Path(args.output),
        seconds=args.seconds,
        size=parse_size(args.size),
        camera=args.camera,
        progress=not args.quiet,
    )
    emit(
        args,
        summary,
        f"wrote {summary['video']} ({summary['frames']} frames, {summary['throughput_fps']:.1f} frames/s) and {summary['preview']}",
    )
    return 0


def add_sheet(p: argparse.ArgumentParser) -> None:
    """stylecast sheet [IMAGE...] -o OUT"""
    p.add_argument("inputs", nargs="*", help="images (default: three frames of the generated demo scene)")
    p.add_argument("-o", "--output", required=True, help="output image (.png or .jpg)")
    p.add_argument(
        "--models", nargs="+", default=["all"], help="model names or checkpoint paths, or 'all' shipped models"
    )
    p.add_argument(
        "--style-image", action="append", default=None, help="arbitrary-style models: a column per picture (repeatable)"
    )
    p.add_argument("--tile-height", type=int, default=180, help="height of each tile in pixels")
    p.add_argument("--backend", default="auto", help="inference backend")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--preserve-color", action="store_true", help="keep the input's colours")
    p.set_defaults(run=cmd_sheet)


def cmd_sheet(args: argparse.Namespace) -> int:
    from stylecast.core.atomic import check_output_file
    from stylecast.core.images import MIN_SIDE, check_image_output, read_rgb, write_rgb
    from stylecast.models.checkpoint import Family
    from stylecast.models.zoo import SHIPPED
    from stylecast.realtime.demo import DemoScene
    from stylecast.realtime.processing import StyleOptions
    from stylecast.realtime.sheet import contact_sheet
    from stylecast.realtime.stylizer import Stylizer, load_model

    if not MIN_SIDE <= args.tile_height <= 4096:
        raise InputError(f"--tile-height must be between {MIN_SIDE} and 4096, got {args.tile_height}")
    check_image_output(Path(args.output))
    check_output_file(Path(args.output))
    names = args.models
    if names == ["all"]:  # arbitrary-style models join when there are style pictures to show
        names = [
            m for m in SHIPPED if SHIPPED[m].path.is_file() and (args.style_image or SHIPPED[m].net != "arbitrary")
        ]
    if args.inputs:
        images = [read_rgb(p) for p in args.inputs]
    else:
        scene = DemoScene(640, 360)
        images = [scene.frame(i) for i in (0, 75, 150)]
    options = StyleOptions(preserve_color=args.preserve_color)
    pictures = {Path(p).stem: read_rgb(p) for p in args.style_image or []}
    stylizers = {}
    for name in names:
        ckpt = load_model(name)
        if pictures and ckpt.family is Family.ARBITRARY:  # a column per style picture
            for stem, picture in pictures.items():
                stylizers[f"{name}: {stem}"] = Stylizer.create(
                    ckpt, args.backend, args.device, options, style_images=[(picture, 1.0)]
                )
        else:  # (without pictures, Stylizer refuses an arbitrary-style model with its one-line error)
            stylizers[name] = Stylizer.create(ckpt, args.backend, args.device, options)
    sheet = contact_sheet(images, stylizers, args.tile_height)
    write_rgb(args.output, sheet)
    emit(
        args,
        {"output": args.output, "columns": list(stylizers), "rows": len(images)},
        f"wrote {args.output} ({len(images)} rows x {len(stylizers)} models)",
    )
    return 0
