"""Metrics behave as defined: warping error on real and synthetic motion, SSIM on known pairs."""

import numpy as np
import pytest
import torch

from stylecast.evaluation.metrics import (
    edge_steps,
    frechet_distance,
    optical_flow,
    pair_errors,
    perceptual_distance,
    ssim,
    visible_mask,
    warp_by_flow,
    warping_error,
)
from stylecast.realtime.demo import DemoScene


@pytest.fixture(scope="module")
def moving_scene():
    scene = DemoScene(160, 96, fps=30)
    return [scene.frame(i) for i in range(8)]


def test_flow_recovers_a_known_shift():
    rng = np.random.default_rng(0)
    base = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
    base = np.ascontiguousarray(np.repeat(np.repeat(base[::4, ::4], 4, 0), 4, 1))  # blocky, trackable
    shifted = np.roll(base, 3, axis=1)  # content moves 3 px right
    flow = optical_flow(base, shifted)  # shifted(x) = base(x - 3)
    assert np.median(flow[8:-8, 8:-8, 0]) == pytest.approx(-3, abs=0.3)
    assert np.abs(np.median(flow[8:-8, 8:-8, 1])) < 0.3
    back = warp_by_flow(base, flow)
    assert np.abs(back[8:-8, 8:-8].astype(int) - shifted[8:-8, 8:-8].astype(int)).mean() < 8


def test_occlusion_check_masks_pixels_that_left_the_frame():
    flow_back = np.zeros((20, 30, 2), np.float32)
    flow_back[..., 0] = -5  # every pixel came from 5 px to the left
    flow_fwd = -flow_back
    mask = visible_mask(flow_back, flow_fwd)
    assert not mask[:, :5].any() and mask[:, 6:].all()


def test_static_scene_has_no_warping_error(moving_scene):
    still = [moving_scene[0]] * 5
    result = warping_error(still, lambda f: f)
    assert result.stylized < 1e-6 and result.input < 1e-6 and result.pairs == 4


def test_warping_error_grows_with_injected_flicker(moving_scene):
    rng = np.random.default_rng(1)

    def flicker(amount):
        def stylize(frame):
            noise = rng.normal(0, amount, frame.shape)
            return np.clip(frame + noise, 0, 255).astype(np.uint8)

        return warping_error(moving_scene, stylize).stylized

    clean = warping_error(moving_scene, lambda f: f)
    assert clean.stylized == pytest.approx(clean.input)  # the identity's error is the input's floor
    small, large = flicker(5), flicker(25)
    assert clean.stylized < small < large
    assert large > 5 * clean.input


def test_ssim_of_identical_and_unrelated_images():
    a = torch.rand(2, 3, 32, 32)
    assert torch.allclose(ssim(a, a), torch.ones(2), atol=1e-5)
    assert (ssim(a, torch.rand(2, 3, 32, 32)) < 0.2).all()
    assert (ssim(a, (a + 0.05 * torch.randn_like(a)).clamp(0, 1)) > 0.7).all()


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, 1, generator=g, dtype=torch.float64)
    y = 3 + 2 * torch.randn(20000, 1, generator=g, dtype=torch.float64)
    # 1-D: (mu_x - mu_y)^2 + (sigma_x - sigma_y)^2 = 9 + 1
    assert frechet_distance(x, y) == pytest.approx(10.0, rel=0.03)
    z = torch.randn(5000, 8, generator=g, dtype=torch.float64) @ torch.randn(8, 8, generator=g, dtype=torch.float64)
    assert abs(frechet_distance(z, z)) < 1e-6
    shift = torch.arange(8, dtype=torch.float64)
    assert frechet_distance(z, z + shift) == pytest.approx(float((shift**2).sum()), rel=1e-6)
    few = torch.randn(4, 16, generator=g, dtype=torch.float64)  # singular covariances stay finite
    assert np.isfinite(frechet_distance(few, few + 1)) and frechet_distance(few, few + 1) == pytest.approx(16)


def test_perceptual_distance_is_zero_for_the_same_features_and_grows_apart():
    g = torch.Generator().manual_seed(0)
    a = {"relu1_2": torch.rand(1, 4, 8, 8, generator=g), "relu2_2": torch.rand(1, 8, 4, 4, generator=g)}
    near = {k: v + 0.01 * torch.rand(v.shape, generator=g) for k, v in a.items()}
    far = {k: torch.rand(v.shape, generator=g) for k, v in a.items()}
    assert float(perceptual_distance(a, a)) == 0
    assert 0 < float(perceptual_distance(a, near)) < float(perceptual_distance(a, far)) <= 8


def test_pair_errors_say_where_the_flicker_is(moving_scene):
    rng = np.random.default_rng(2)

    def flicker_on_the_left(frame):  # 160 px wide: noise on columns 0-79, the input elsewhere
        out = frame.astype(np.float64)
        out[:, :80] += rng.normal(0, 20, out[:, :80].shape)
        return np.clip(out, 0, 255).astype(np.uint8)

    pairs = list(pair_errors(moving_scene, flicker_on_the_left))
    assert len(pairs) == len(moving_scene) - 1
    for pair in pairs:
        assert pair.stylized.shape == pair.input.shape == pair.visible.shape == (96, 160)
        left, right = pair.visible[:, :70], pair.visible[:, 90:]  # away from the seam the warp blurs
        assert pair.stylized[:, :70][left].mean() > 20 * pair.input[:, :70][left].mean()
        np.testing.assert_allclose(pair.stylized[:, 90:][right], pair.input[:, 90:][right], atol=1e-6)


def test_edge_steps_find_a_frame_and_one_sided_stripes_and_ignore_texture():
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (256, 384, 3)).astype(np.uint8)
    colour, stripes = edge_steps(texture)
    assert colour.grey_levels < 15 and stripes.grey_levels < 8  # noise: every band about the interior

    framed = texture.copy()
    framed[12, 12:-12] = framed[-13, 12:-12] = 0  # a dark line 12 px in from the edge
    framed[12:-12, 12] = framed[12:-12, -13] = 0
    framed[:3], framed[-3:], framed[:, :3], framed[:, -3:] = 230, 230, 230, 230  # a light rim
    colour, _ = edge_steps(framed)
    assert colour.grey_levels > 60 and colour.depth in (0, 9, 10, 11, 12)  # a band of 4 lines: 3 of rim

    flat = np.full((256, 384, 3), 128, np.uint8)
    flat[:, 2:12:2] = 160  # stripes along the left edge only: the mean of every band stays near 140
    colour, stripes = edge_steps(flat)
    assert (stripes.side, stripes.grey_levels) == ("left", 32.0) and stripes.depth < 12
    band = texture.copy()
    band[:, 384 - 8 :, 1] = 255  # a green band on the right
    assert edge_steps(band)[0].side == "right"
