"""Every shipped model trained again from its recipe (training/recipes/<model>.json):

    python -m stylecast.training.shipped --data PHOTOS/ --styles PAINTINGS/ --vgg-weights VGG19.pth --out models/zoo

Runs resume where they stopped (each keeps its run folder under --runs), so the queue can be
interrupted and started again. Small networks first: they are the CPU defaults.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from stylecast.models.zoo import SHIPPED
from stylecast.training.recipe import recipe_names, recipe_stages, run_recipe


def recipe_parser(description: str, runs: str) -> argparse.ArgumentParser:
    """The queue's flags."""
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
    parser.add_argument("--styles", default=None, help="folder with <painting>.jpg for the recipes' paintings")
    parser.add_argument(
        "--vgg-weights", default=None, help="VGG19 weights file (else the environment's or torchvision)"
    )
    args = parse_recipe_args(parser)
    names = sorted(recipe_names(), key=lambda name: not name.endswith("-small"))  # stable: small nets first
    for name in names:
        if args.only and name not in args.only:
            continue
        target = Path(args.out) / SHIPPED[name].file
        if target.is_file():
            logging.info("%s exists, skipping", target)
            continue
        stages = recipe_stages(name, args.data, args.styles, str(target), args.vgg_weights, str(Path(args.runs) / name))
        run_recipe(stages, args.data, progress=False)
        logging.info("wrote %s", target)


if __name__ == "__main__":
    main()
