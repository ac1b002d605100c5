"""The recipe the shipped translators in models/zoo were trained with, runnable again:

    python -m stylecast.training.shipped_translators --data ../shared/trainset --out models/zoo

    colorize      pix2pix, grayscale -> colour, on free pairs made from every training photo
    teal_orange   CycleGAN, photo -> the teal-and-orange grade (training/grades.py), learned from
                  two unpaired halves of the training photos: the even-numbered photos as they
                  are, the odd-numbered ones graded, so no photo appears in both domains

Runs resume where they stopped (each keeps its run folder under --runs).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from stylecast.core.images import read_rgb, write_rgb
from stylecast.training.data import list_images
from stylecast.training.grades import GRADES
from stylecast.training.shipped import parse_recipe_args, recipe_parser
from stylecast.training.translators import TranslatorConfig, train_cyclegan, train_pix2pix

# Sized for a 2-core CPU, one thread per run. Colorizing needs context (sky, foliage, skin),
# so the U-Net keeps all seven levels at 128 px, at half the usual width. A colour grade is a
# per-pixel function, so the CycleGAN generators can be narrow and see small crops; they are
# U-Nets, not the paper's ResNet generator: after 1600 steps that one still blurred the photos
# (its instance norms discard the colour statistics a grade depends on and its bottleneck the
# detail; SSIM to the target 0.52, below the untouched photo's 0.95), while the U-Net's skips
# pass both through. Their decoder resizes and convolves: with the paper's transposed
# convolutions the run learned the grade (L1 to the target 0.035, the photo's 0.041) but laid
# a fine grid over every output (SSIM 0.83, the photo's 0.95).
RECIPES: dict[str, dict[str, Any]] = {
    "colorize": {
        "trainer": "pix2pix",
        "pairs": "grayscale",
        "generator": "unet",
        "width": 32,
        "steps": 3000,
        "batch_size": 4,
        "scale_size": 143,
        "crop_size": 128,
        "lr": 2e-4,
    },
    "teal_orange": {
        "trainer": "cyclegan",
        "generator": "unet",
        "unet_depth": 5,
        "unet_upsample": "resize",
        "width": 16,
        "steps": 3000,
        "batch_size": 2,
        "scale_size": 143,
        "crop_size": 96,
        "lr": 2e-4,
    },
}


def graded_domains(data: Path, grade: str, work: Path) -> tuple[Path, Path]:
    """Domain A: the even-numbered photos as they are; domain B: the odd-numbered ones graded."""
    domain_a, domain_b = work / "photos", work / grade
    if not (domain_b / ".complete").is_file():
        for folder in (domain_a, domain_b):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        for i, path in enumerate(list_images(data)):
            if i % 2 == 0:
                (domain_a / path.name).symlink_to(path.resolve())
            else:
                write_rgb(domain_b / f"{path.stem}.png", GRADES[grade](read_rgb(path)))
        (domain_b / ".complete").touch()
    return domain_a, domain_b


def main() -> None:
    args = parse_recipe_args(recipe_parser(__doc__, runs="runs/translators"))
    runs = Path(args.runs)
    for name, recipe in RECIPES.items():
        target = Path(args.out) / f"{name}.pt"
        if (args.only and name not in args.only) or target.is_file():
            continue
        options = {k: v for k, v in recipe.items() if k != "trainer"}
        trained = runs / name / f"{name}.pt"  # CycleGAN writes its reverse generator beside it
        config = TranslatorConfig(out=str(trained), run_dir=str(runs / name), checkpoint_every=100, **options)
        if recipe["trainer"] == "pix2pix":
            train_pix2pix(TranslatorConfig(**(vars(config) | {"data": args.data})), progress=False)
        else:
            domain_a, domain_b = graded_domains(Path(args.data), name, runs / "data")
            train_cyclegan(
                TranslatorConfig(**(vars(config) | {"data_a": str(domain_a), "data_b": str(domain_b)})), progress=False
            )
        shutil.copyfile(trained, target)
        logging.info("shipped %s", target)


if __name__ == "__main__":
    main()
