"""Quality metrics: temporal warping error for video, and image metrics against a reference.

Warping error (Lai et al. 2018, "Learning Blind Video Temporal Consistency"): for consecutive
frames, the optical flow of the *input* video says where each pixel of frame t+1 was in frame
t; the stylized frame t, warped along that flow, should equal the stylized frame t+1 wherever
the pixel was visible in both (occlusions are found with a forward-backward flow check). The
mean squared difference over visible pixels (RGB in [0, 1]) is the error; the same figure for
the input video itself is the floor that lighting changes and flow errors leave.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from stylecast.training.losses import gram_matrix

MIN_FLOW_SIDE = 12  # OpenCV's DIS flow refuses smaller frames


def optical_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Dense flow H x W x 2 such that target(x) ~ source(x + flow(x)) (uint8 RGB inputs)."""
    h, w = source.shape[:2]
    if min(h, w) < MIN_FLOW_SIDE:
        raise ValueError(f"frames are {w}x{h}; the optical flow needs at least {MIN_FLOW_SIDE} pixels a side")
    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    gray_target = cv2.cvtColor(target, cv2.COLOR_RGB2GRAY)
    gray_source = cv2.cvtColor(source, cv2.COLOR_RGB2GRAY)
    return dis.calc(gray_target, gray_source, None)  # type: ignore[call-overload]  # stubs lack the None output


def warp_by_flow(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `image` at x + flow(x) (bilinear, border replicated)."""
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def visible_mask(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Pixels of frame t+1 whose flow into frame t comes back (Sundaram et al. 2010's check)."""
    forward_there = warp_by_flow(forward, backward)  # forward flow at x + backward(x)
    round_trip = backward + forward_there
    limit = 0.01 * ((backward**2).sum(-1) + (forward_there**2).sum(-1)) + 0.5
    h, w = backward.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w), np.arange(h))
    inside = (grid_x + backward[..., 0] >= 0) & (grid_x + backward[..., 0] <= w - 1)
    inside &= (grid_y + backward[..., 1] >= 0) & (grid_y + backward[..., 1] <= h - 1)
    return ((round_trip**2).sum(-1) < limit) & inside


@dataclass
class WarpingError:
    stylized: float  # mean over frame pairs of the masked MSE between consecutive outputs
    input: float  # the same figure for the input frames: the floor
    pairs: int
    visible: float  # mean fraction of pixels that passed the occlusion check

    @property
    def ratio(self) -> float:
        return self.stylized / self.input if self.input else float("inf")


@dataclass
class PairErrors:
    """One pair of consecutive frames: where it was compared and how far each video missed."""

    frame: np.ndarray  # H x W x 3 uint8, the later input frame
    backward: np.ndarray  # H x W x 2, frame(x) ~ previous(x + backward(x))
    visible: np.ndarray  # H x W bool, passed the occlusion check
    stylized: np.ndarray  # H x W float, squared error per pixel (mean over RGB in [0, 1])
    input: np.ndarray  # H x W float, the same for the input frames


def pair_errors(frames: Iterable[np.ndarray], stylize: Callable[[np.ndarray], np.ndarray]) -> Iterator[PairErrors]:
    """Per-pixel warping errors of `stylize` and of the input, pair by pair (uint8 RGB frames)."""
    previous: tuple[np.ndarray, np.ndarray] | None = None  # the last input frame and its stylization
    for frame in frames:
        out = stylize(frame)
        if previous is not None:
            previous_in, previous_out = previous
            backward = optical_flow(previous_in, frame)  # frame(x) ~ previous(x + backward(x))
            forward = optical_flow(frame, previous_in)
            errors = [
                ((cur.astype(np.float32) / 255 - warp_by_flow(prev.astype(np.float32) / 255, backward)) ** 2).mean(-1)
                for prev, cur in ((previous_out, out), (previous_in, frame))
            ]
            yield PairErrors(frame, backward, visible_mask(backward, forward), *errors)
        previous = frame, out


def warping_error(frames: Iterable[np.ndarray], stylize: Callable[[np.ndarray], np.ndarray]) -> WarpingError:
    """Warping error of `stylize` over consecutive `frames` (uint8 RGB), next to the input's."""
    stylized_errors: list[float] = []
    input_errors: list[float] = []
    visible: list[float] = []
    for pair in pair_errors(frames, stylize):
        visible.append(float(pair.visible.mean()))
        for errors, error_map in ((stylized_errors, pair.stylized), (input_errors, pair.input)):
            errors.append(float(error_map[pair.visible].mean()) if pair.visible.any() else 0.0)
    pairs = len(stylized_errors)
    if pairs == 0:
        raise ValueError("need at least two frames")
    return WarpingError(float(np.mean(stylized_errors)), float(np.mean(input_errors)), pairs, float(np.mean(visible)))


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) of N x C x H x W images in [0, 1], per image."""
    coords = torch.arange(window, dtype=a.dtype, device=a.device) - window // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = (g / g.sum()).view(1, 1, 1, -1)
    channels = a.shape[1]

    def blur(x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, g.expand(channels, 1, 1, window), groups=channels)
        return F.conv2d(x, g.transpose(2, 3).expand(channels, 1, window, 1), groups=channels)

    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    score = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return score.mean(dim=(1, 2, 3))


def perceptual_distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> torch.Tensor:
    """VGG feature distance of two images (Zhang et al. 2018's recipe without learned weights):
    features unit-normalized along channels, squared differences averaged over positions and
    summed over layers. 0 for identical images; up to 4 per layer."""
    total = torch.zeros(())
    for name in a:
        fa, fb = F.normalize(a[name].float(), dim=1), F.normalize(b[name].float(), dim=1)  # N x C x H x W
        total = total + ((fa - fb) ** 2).sum(dim=1).mean().cpu()
    return total


def frechet_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two sample sets (N x D, M x D):
    |mu_x - mu_y|^2 + tr(S_x + S_y - 2 (S_x S_y)^(1/2)) (Heusel et al. 2017).

    tr((S_x S_y)^(1/2)) is the sum of square roots of the eigenvalues of S_x^(1/2) S_y S_x^(1/2),
    which is symmetric, so it stays real and stable even for a singular covariance."""
    x, y = x.double(), y.double()
    mu_x, mu_y = x.mean(0), y.mean(0)
    s_x, s_y = torch.cov(x.T).reshape(x.shape[1], -1), torch.cov(y.T).reshape(y.shape[1], -1)
    values, vectors = torch.linalg.eigh(s_x)
    root_x = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    middle = torch.linalg.eigvalsh(root_x @ s_y @ root_x).clamp(min=0).sqrt().sum()
    return float((mu_x - mu_y).square().sum() + torch.trace(s_x) + torch.trace(s_y) - 2 * middle)


# the style distance of `stylecast eval quality`: VGG19 (the Caffe weights) at Gatys et al.'s layers
STYLE_DISTANCE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def style_distance(features: dict[str, torch.Tensor], style_grams: dict[str, torch.Tensor]) -> float:
    """Mean over STYLE_DISTANCE_LAYERS of the MSE between the image's Gram matrices (normalized by
    C*H*W; 1 x C x C) and the painting's: how far the image's textures are from the painting's."""
    errors = [F.mse_loss(gram_matrix(features[name]), style_grams[name]) for name in STYLE_DISTANCE_LAYERS]
    return float(torch.stack(errors).mean())


@dataclass(frozen=True)
class EdgeStep:
    """How far a picture's edge departs from its interior, where it departs most."""

    grey_levels: float
    side: str  # top | bottom | left | right
    depth: int  # px in from that edge


def edge_steps(rgb: np.ndarray, depth: int = 32, interior: int = 48, band: int = 4) -> tuple[EdgeStep, EdgeStep]:
    """A stylizer's edge artifacts on a picture with no edge of its own (uniform noise), per
    side, for each band of `band` lines starting 0..depth-band px in (their middle part, clear
    of the corners; a band, not a line, so that the texture's own variation averages out):

    - colour: the largest per-channel difference (grey levels) between the band's mean and the
      mean of everything at least `interior` px in (a coloured rim, a dark line inside the edge);
    - stripes: how much more the band's lines differ from their next ones in than neighbouring
      lines of the interior do (mean absolute difference; stripes along one edge, which leave
      the mean as it is).

    The worst band of each; a side's artifact is not diluted by the other three."""
    h, w = rgb.shape[:2]
    pixels = rgb.astype(np.float64)
    core = pixels[interior : h - interior, interior : w - interior]
    inner_mean = core.reshape(-1, 3).mean(axis=0)
    inner_change = {  # between neighbouring lines parallel to the side
        "rows": float(np.abs(np.diff(core, axis=0)).mean()),
        "columns": float(np.abs(np.diff(core, axis=1)).mean()),
    }
    sides = {  # each: lines from the edge inward, (depth + 1) x length x 3
        "top": pixels[: depth + 1, interior : w - interior],
        "bottom": pixels[::-1][: depth + 1, interior : w - interior],
        "left": pixels[interior : h - interior, : depth + 1].transpose(1, 0, 2),
        "right": pixels[interior : h - interior, ::-1][:, : depth + 1].transpose(1, 0, 2),
    }
    colour, stripes = EdgeStep(-np.inf, "", 0), EdgeStep(-np.inf, "", 0)
    for side, lines in sides.items():
        change = inner_change["rows" if side in ("top", "bottom") else "columns"]
        for k in range(depth - band + 1):
            off = float(np.abs(lines[k : k + band].mean(axis=(0, 1)) - inner_mean).max())
            striped = float(np.abs(np.diff(lines[k : k + band + 1], axis=0)).mean()) - change
            colour = max(colour, EdgeStep(off, side, k), key=lambda step: step.grey_levels)
            stripes = max(stripes, EdgeStep(striped, side, k), key=lambda step: step.grey_levels)
    return colour, stripes
