"""What the commands share: the model flags, dataclass configs as flags, the output line.

Nothing here imports torch at module level: `stylecast --help` and `stylecast video --help`
build their parsers without it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stylecast.core.errors import InputError
from stylecast.realtime.names import BACKENDS, TRANSFORMS, UPSAMPLERS

if TYPE_CHECKING:
    import numpy as np

    from stylecast.realtime.stylizer import Stylizer

EXIT_USAGE = 2


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each flag's default in its help, and keeps the description's line breaks."""


def with_output_flags(parser: argparse.ArgumentParser, nested: bool = False) -> argparse.ArgumentParser:
    """--json and -q on a command. `nested`: a flag that `train` or `eval` already has, again on
    one of its subcommands, without a default of its own: argparse would let that default undo
    the flag given before the name."""
    default = argparse.SUPPRESS if nested else False
    parser.add_argument("--json", action="store_true", default=default, help="print a machine-readable result")
    parser.add_argument("-q", "--quiet", action="store_true", default=default, help="no progress bar")
    return parser


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    from stylecast.models.zoo import DEFAULT_MODEL

    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        default=None,
        help="shipped model name (see `stylecast models`), checkpoint path, or a file `stylecast export` wrote"
        f" (.onnx, .pt2) (default: {DEFAULT_MODEL}, or arbitrary when --style-image is given)",
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
        "--transform", default=None, choices=TRANSFORMS, help="arbitrary-style models: feature transform"
    )
    parser.set_defaults(choose_model=True)


def choose_model(args: argparse.Namespace) -> None:
    """--model left out: a style picture alone asks for the model that takes any picture."""
    from stylecast.models.zoo import DEFAULT_MODEL

    if getattr(args, "choose_model", False) and args.model is None:
        args.model = "arbitrary" if args.style_image else DEFAULT_MODEL


def check_style_options(args: argparse.Namespace) -> None:
    if not 0.0 <= args.strength <= 1.0:
        raise InputError(f"--strength must be between 0 and 1, got {args.strength}")
    if not 0.0 < args.scale <= 4.0:
        raise InputError(f"--scale must be in (0, 4], got {args.scale}")
    if args.max_size is not None and args.max_size < 16:
        raise InputError(f"--max-size must be at least 16, got {args.max_size}")


def build_stylizer(args: argparse.Namespace) -> Stylizer:
    from stylecast.realtime.processing import StyleOptions
    from stylecast.realtime.stylizer import Stylizer

    check_style_options(args)
    options = StyleOptions(args.strength, args.preserve_color, args.max_size, args.scale, args.upsample)
    style_images = read_weighted_images(args.style_image, "style image weight") if args.style_image else None
    return Stylizer.create(
        args.model, args.backend, args.device, options, args.style, style_images, args.alpha, args.transform
    )


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


def parse_weighted(spec: str) -> tuple[str, float]:
    """'painting.jpg:0.7' -> ('painting.jpg', 0.7); a path without a weight gets 1."""
    path, _, weight = spec.rpartition(":")
    if path:
        try:
            return path, float(weight)
        except ValueError:
            pass
    return spec, 1.0


def emit(args: argparse.Namespace, result: dict[str, Any], line: str) -> None:
    print(json.dumps(result, indent=2) if args.json else line)


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


def check_target_fps(fps: float) -> None:
    """The frame rate the resolution governor aims for (webcam and serve)."""
    if not 0 < fps <= 1000:
        raise InputError(f"--target-fps must be between 0 and 1000, got {fps}")


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"size must look like 640x360, got {text!r}") from None
    if not (16 <= w <= 7680 and 16 <= h <= 4320):
        raise InputError(f"size {text} is out of range (16x16 to 7680x4320)")
    return w, h


def finite_float(text: str) -> float:
    """argparse's float, less NaN and infinity: either would pass every range check and poison the math."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


OPTIONAL_KINDS = {"int | None": int, "float | None": float}  # a field with no default value: its annotation says


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
            value_type = OPTIONAL_KINDS.get(str(f.type), str) if default is None else type(default)
            kind = finite_float if value_type is float else value_type
            parser.add_argument(flag, type=kind, default=default, choices=f.metadata.get("choices"), help=help_text)


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
