"""stylecast train (fast, multistyle, arbitrary, pix2pix, cyclegan) and stylecast optimize (Gatys)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from stylecast.cli.common import (
    HelpFormatter,
    add_config_arguments,
    config_from_args,
    emit,
    read_weighted_images,
    with_output_flags,
)
from stylecast.core.errors import InputError


def add_train(p: argparse.ArgumentParser) -> None:
    """stylecast train METHOD: one subcommand per method, each with its config's flags; or
    stylecast train --recipe NAME: a shipped model's recipe."""
    from stylecast.training.arbitrary import ArbitraryConfig
    from stylecast.training.fast import FastConfig
    from stylecast.training.recipe import recipe_names
    from stylecast.training.translators import TranslatorConfig

    recipe = p.add_argument_group("a shipped model's recipe (instead of a METHOD)")
    recipe.add_argument("--recipe", choices=recipe_names(), help="the recipe (training/recipes/NAME.json)")
    # dests of their own: a METHOD's flags of the same names would overwrite these
    recipe.add_argument("--data", dest="recipe_data", metavar="DIR", help="folder of training photos")
    recipe.add_argument(
        "--styles", dest="recipe_styles", metavar="DIR", help="folder with the recipe's paintings as NAME.jpg"
    )
    recipe.add_argument("--out", dest="recipe_out", metavar="CKPT", help="the checkpoint (.pt) the last stage writes")
    recipe.add_argument(
        "--vgg-weights", dest="recipe_vgg_weights", metavar="FILE", help="VGG weights file (else the environment's)"
    )
    recipe.add_argument(
        "--run-dir", dest="recipe_run_dir", metavar="DIR", help="run folders of the stages (default: <out>.run/)"
    )
    recipe.add_argument(
        "--dry-run", dest="recipe_dry_run", action="store_true", help="two steps of the first stage; write nothing"
    )
    p.set_defaults(run=cmd_train_recipe)
    methods = p.add_subparsers(dest="method", metavar="METHOD")

    def method(name: str, help_text: str, config_cls: type, **defaults: Any) -> None:
        parser = with_output_flags(
            methods.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter), nested=True
        )
        add_config_arguments(parser, config_cls)
        parser.set_defaults(**defaults)

    method("fast", "Johnson feed-forward network for one style", FastConfig, run=cmd_train_fast)
    method(
        "multistyle",
        "one network for several styles (conditional instance norm)",
        FastConfig,
        run=cmd_train_fast,
        net="multistyle",
    )
    method(
        "arbitrary",
        "arbitrary style: distil a compact encoder, train an AdaIN decoder",
        ArbitraryConfig,
        run=cmd_train_arbitrary,
    )
    method(
        "pix2pix",
        "pix2pix: paired (or free-pair) image translation",
        TranslatorConfig,
        run=cmd_train_translator,
        method="pix2pix",
    )
    method("cyclegan", "CycleGAN: unpaired translation", TranslatorConfig, run=cmd_train_translator, method="cyclegan")


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
    from stylecast.training.fast import FastConfig, train

    config = config_from_args(FastConfig, args)
    check_training_outputs(config)
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


def cmd_train_recipe(args: argparse.Namespace) -> int:
    """`stylecast train --recipe NAME ...`; without a recipe, a METHOD is needed."""
    from stylecast.core.atomic import check_output_file
    from stylecast.training.recipe import recipe_stages, run_recipe

    if args.recipe is None:
        raise InputError("name a METHOD (fast, multistyle, arbitrary, pix2pix, cyclegan) or give --recipe NAME")
    needed = {"--data": args.recipe_data, "--out": args.recipe_out}
    missing = [flag for flag, value in needed.items() if not value]
    if missing:
        raise InputError(f"--recipe needs {', '.join(missing)}")
    stages = recipe_stages(
        args.recipe, args.recipe_data, args.recipe_styles, args.recipe_out, args.recipe_vgg_weights, args.recipe_run_dir
    )
    # --out, checked before any training: the stages' own outputs go into the run folder
    last = stages[-1]
    if last.publish is None:
        check_training_outputs(last.config)
    else:
        check_output_file(last.publish)
    if args.recipe_dry_run:
        stages = [dataclasses.replace(stages[0], config=dataclasses.replace(stages[0].config, dry_run=True))]
    checkpoint = run_recipe(stages, args.recipe_data, progress=not args.quiet)
    if checkpoint is not None:
        report_trained(args, checkpoint)
    return 0


def report_trained(args: argparse.Namespace, checkpoint: Path, **details: object) -> None:
    """The training result on stdout (on the process that wrote it): a line, or JSON with --json."""
    if args.json:
        print(json.dumps({"checkpoint": str(checkpoint), **details}))
    else:
        extra = f" ({details['steps']} steps in {details['seconds']:.0f} s)" if details else ""
        print(f"wrote {checkpoint}{extra}")


def cmd_train_translator(args: argparse.Namespace) -> int:
    from stylecast.training.translators import TranslatorConfig, train_cyclegan, train_pix2pix

    config = config_from_args(TranslatorConfig, args)
    check_training_outputs(config, cyclegan=args.method == "cyclegan")
    out = (train_pix2pix if args.method == "pix2pix" else train_cyclegan)(config, progress=not args.quiet)
    if out is not None:
        report_trained(args, out)
    return 0


def cmd_train_arbitrary(args: argparse.Namespace) -> int:
    from stylecast.training.arbitrary import ArbitraryConfig, train_arbitrary

    config = config_from_args(ArbitraryConfig, args)
    check_training_outputs(config)
    out = train_arbitrary(config, progress=not args.quiet)
    if out is not None:
        report_trained(args, out)
    return 0


def add_optimize(p: argparse.ArgumentParser) -> None:
    """stylecast optimize: Gatys' optimization of one image, the quality reference."""
    from stylecast.training.gatys import GatysConfig

    add_config_arguments(p, GatysConfig)
    p.set_defaults(run=cmd_optimize)


def cmd_optimize(args: argparse.Namespace) -> int:
    import time

    from stylecast.core.atomic import check_output_file
    from stylecast.core.device import resolve_device
    from stylecast.core.images import check_image_output, read_rgb, write_rgb
    from stylecast.models.vgg import gatys_loss_network
    from stylecast.training.gatys import GatysConfig, stylize_image

    config = config_from_args(GatysConfig, args)
    check_image_output(Path(config.out))
    check_output_file(Path(config.out))
    if (
        config.content_weight < 0
        or config.style_weight < 0
        or (config.content_weight == 0 and config.style_weight == 0)
    ):
        raise InputError("--content-weight and --style-weight must be >= 0 and not both 0")
    content = read_rgb(config.content)
    styles = read_weighted_images(config.styles, "style weight")
    device = resolve_device(config.device)
    vgg = gatys_loss_network(config.vgg_weights, config.style_layers, config.content_layer, device)
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
