"""The recipe the shipped models in models/zoo were trained with, runnable again:

    python -m stylecast.training.shipped --data ../shared/trainset --styles ../shared/media/styles \
        --vgg-weights ../shared/weights/vgg19_imagenet_caffe_to_relu3_4.pth --out models/zoo

Runs resume where they stopped (each keeps its run folder under --runs), so the queue can be
interrupted and started again. Small networks first: they are the CPU defaults.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch

from stylecast.models.zoo import MULTISTYLE_PAINTINGS, SHIPPED
from stylecast.training.fast import FastConfig, train

# Chosen for a 2-core CPU: 128 px crops of photos scaled to 320 px (the 360p scale the models
# are used at) keep a step under a second for the small net, so it gets the thousands of steps
# texture takes to appear (a net matches the painting's relu2_2/relu3_3 statistics far more
# slowly than Gatys' optimization does). The style/content balance matches pytorch/examples'
# once its weights are converted to the Caffe VGG's 0..255 scale (about 30:1).
# The small net cannot match the painting's Gram matrices as closely as Gatys' optimization,
# and at style weight 20 it trades the content away for a repeating texture (4000 steps: SSIM
# to the photo ~0.06); at 5 it keeps the content but only takes the palette; 10 is between.
# The multi-style networks share their convolutions across eight styles (each sample of a batch
# gets its own style), so each style sees an eighth of the steps; more would help, but a 2-core
# CPU affords these.
# The single-style nets train with the temporal loss from the first step. On starry_night-small
# against the same recipe without it: weight 1e7 cut the flicker on the shared clips by 18-41%
# at the same style loss, 3e7 by 41-58% at a 10% higher style loss (docs/temporal-training.md).
# The standard nets take the same temporal weight (it is relative to the content loss, which
# both share) and half the style weight: with its capacity the standard net fits the texture
# far better and gives up the photo for it. At 20 it had lost the photo's shapes by step 400;
# at 10 (3000 steps) starry_night scored style 3.7, content 1.72 times Gatys-20's and SSIM
# 0.18, great_wave turned skylines into blotches (SSIM 0.27); at 5 (2000 steps) starry_night
# scored 3.4, 1.58 and 0.20, great_wave 3.7, 1.50 and 0.31 (docs/models.md, quality table). Against
# the same recipe without the temporal loss, 3e7 cuts the standard nets' flicker by 37-90%
# (starry_night 61-73% at a 13% lower style loss on photos at 256 px, the_scream 37-74% at the
# same, great_wave and composition_vii at a 34% and 74% higher one; docs/temporal-training.md,
# "The standard nets against their controls"). The standard multi-style net, each style with an
# eighth of the steps, trained at 10.
RECIPE: dict[str, dict[str, Any]] = {
    "small": {"steps": 3000, "lr": 2e-3, "style_weight": 10.0, "temporal_weight": 3e7},
    # the anti-aliased small net with instance-norm epsilon 1e-3 (the default,
    # starry_night-small), fp32 as the anti-aliased control was trained: anti-aliasing alone
    # flickers 71-84% less than the plain net's first release; at 1e8 the larger epsilon
    # flickers 10-47% less than the anti-aliased net did at 1e8, at a 3% higher style loss
    # (docs/temporal-training.md, "Instance-norm epsilon"). It re-noises its moved crops with
    # video-shaped noise and also holds flattened crops still (--flat-scene-weight 1), below
    "small_aa_eps": {
        "steps": 3000,
        "lr": 2e-3,
        "style_weight": 10.0,
        "temporal_weight": 1e8,
        "temporal_noise": "video",
        "flat_scene_weight": 1.0,
        "amp": False,
    },
    # the default's net with reflection padding in its deep layers (no painted frame), distilled
    # from its painting's standard net (--teacher, in MODEL_OVERRIDES) with the default's temporal
    # terms; 192 px crops: a distillation step is cheap enough for them
    "small_aa_eps_reflect": {
        "steps": 3000,
        "lr": 2e-3,
        "teacher_weight": 5e8,
        "temporal_weight": 1e8,
        "temporal_noise": "video",
        "flat_scene_weight": 1.0,
        "crop_size": 192,
        "temporal_rng": "own",
    },
    "standard": {"steps": 2000, "lr": 1e-3, "style_weight": 5.0, "temporal_weight": 3e7},
    "multistyle_small": {"steps": 3000, "lr": 2e-3, "style_weight": 10.0},
    "multistyle": {"steps": 3000, "lr": 1e-3, "style_weight": 10.0},
}
# Per model, over its net's recipe. The default, starry_night-small, is distilled from the
# standard starry_night; the shipped weights then had 500 steps with the painting's Gram matrices
# beside the teacher, a second stage this queue does not run (docs/look.md gives its command). great_wave-small takes small_aa_eps's recipe with seed
# 0: against its control, which already flickers less than the input on the animated clip, it misses the target (-28 to -51% at +3.0% style loss), but against the
# plain net it replaced it flickers 39-65% less on four clips (+6% on the still bottle clip) at
# the same style loss (docs/temporal-training.md, "great_wave-small on the default's recipe").
# composition_vii-small (seed 0) re-noises with codec noise, video noise blurred by up to 16 px
# as the still bottle clip's coarse change is, at 1.5e8 and with its own generator for the
# temporal terms: against its control, 43-73% less flicker on every clip at a style loss 4.2%
# above the control's, where video noise gave the bottle clip 34% at that weight
# (docs/temporal-training.md, "Codec noise: the still bottle clip"). The standard great_wave
# paid a 34% higher style loss than its control for its 61-90% at 3e7; at 1e7 it takes 42-80%
# off at +8.8% (docs/temporal-training.md, "The standard nets against their controls"). The standard the_scream's still bottle clip lost only
# 37% of its flicker at 3e7; 7e7 takes 45-73% off every clip at +7.1% (tried, and reproduced bit
# for bit, with --threads 2).
MODEL_OVERRIDES: dict[str, dict[str, Any]] = {
    "starry_night-small": {"teacher": "starry_night", "seed": 0},
    "composition_vii-small": {"temporal_weight": 1.5e8, "temporal_noise": "codec", "temporal_rng": "own"},
    "great_wave": {"temporal_weight": 1e7},
    "the_scream": {"temporal_weight": 7e7},
}
COMMON: dict[str, Any] = {
    # the Caffe VGG19 as far as the old weights file went (relu3_4): style layers relu1_2..relu3_3
    "loss_network": "vgg19",
    # the shipped models' temporal terms drew from the crops' generator (so each run saw other
    # crops than its control); "shared" keeps reproducing their weights bit for bit. Those
    # trained since as paired runs (MODEL_OVERRIDES: "own") drew from their own
    "temporal_rng": "shared",
    "scale_size": 320,
    "batch_size": 4,
    "crop_size": 128,
    "lr_final": 0.1,
    "style_size": 512,
    "tv_weight": 1e5,
    "content_weight": 1.0,
}


def recipe_parser(description: str, runs: str) -> argparse.ArgumentParser:
    """The flags every shipped-model recipe takes (this one and training/shipped_translators.py)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="training photos")
    parser.add_argument(
        "--out", default=str(Path(__file__).resolve().parent.parent / "models" / "zoo"), help="where the .pt files go"
    )
    parser.add_argument("--runs", default=runs, help="run folders (resume state, TensorBoard, any sample grids)")
    parser.add_argument("--only", nargs="*", default=None, help="train only these model names")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return parser


def parse_recipe_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line, then set up the log format and torch's CPU threads from it."""
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def main() -> None:
    parser = recipe_parser(__doc__, runs="runs/shipped")
    parser.add_argument("--styles", required=True, help="folder with <style>.jpg for each shipped style")
    parser.add_argument(
        "--vgg-weights", default=None, help="VGG19 weights file (else $STYLECAST_VGG_WEIGHTS or torchvision)"
    )
    args = parse_recipe_args(parser)
    stylizers = [m for m in SHIPPED.values() if m.net in RECIPE]
    order = sorted(stylizers, key=lambda m: "small" not in m.net)  # stable: zoo order within each size
    for model in order:
        if args.only and model.name not in args.only:
            continue
        target = Path(args.out) / model.file
        if target.is_file():
            logging.info("%s exists, skipping", target)
            continue
        styles = MULTISTYLE_PAINTINGS if model.net.startswith("multistyle") else (model.name.removesuffix("-small"),)
        config = FastConfig(
            style=tuple(str(Path(args.styles) / f"{style}.jpg") for style in styles),
            data=args.data,
            out=str(target),
            net=model.net,
            style_names=styles,
            vgg_weights=args.vgg_weights,
            run_dir=str(Path(args.runs) / model.name),
            checkpoint_every=50,
            **(COMMON | RECIPE[model.net] | MODEL_OVERRIDES.get(model.name, {})),
        )
        result = train(config, progress=False)
        logging.info("wrote %s after %d steps (%.0f s this run)", target, config.steps, result.seconds)


if __name__ == "__main__":
    main()
