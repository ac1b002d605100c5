"""The live processing resolution: down while the model is slower than the source, back up when it can."""

import time

import numpy as np

from stylecast.realtime.governor import AdaptiveStylizer, ResolutionGovernor
from stylecast.realtime.processing import StyleOptions
from stylecast.realtime.stylizer import Stylizer


def test_governor_steps_down_when_slow_and_back_up():
    governor = ResolutionGovernor(budget_s=1 / 30, window=4)
    for _ in range(4):  # a full window over budget on 1280 px frames: one rung down
        governor.observe(0.080, processed_side=1280)
    assert governor.max_size == 960
    for _ in range(4):
        governor.observe(0.080, processed_side=960)
    assert governor.max_size == 720
    for _ in range(3):  # not a full window yet
        governor.observe(0.005, processed_side=720)
    assert governor.max_size == 720
    governor.observe(0.005, processed_side=720)  # a window well under budget: one rung back up
    assert governor.max_size == 960


def test_governor_skips_the_rungs_that_would_not_shrink_the_frame():
    """On 400x300 frames the 960, 720, 640 and 480 caps change nothing: one window goes to 320."""
    governor = ResolutionGovernor(budget_s=1 / 30, window=4)
    for _ in range(4):
        governor.observe(0.080, processed_side=400)
    assert governor.max_size == 320


class SlowAboveBackend:
    """The real backend, made too slow for the camera above a size: each call on a model input
    wider than `side` pixels lasts `slow_s`, on a smaller one `fast_s` (or the model's own time)."""

    def __init__(self, backend, side, slow_s, fast_s):
        self.backend, self.side, self.slow_s, self.fast_s = backend, side, slow_s, fast_s
        self.sizes = []

    def __call__(self, x, *conditions):
        started = time.perf_counter()
        self.sizes.append(tuple(x.shape[2:]))
        y = self.backend(x, *conditions)
        duration = self.slow_s if max(x.shape[2:]) > self.side else self.fast_s
        time.sleep(max(0.0, duration - (time.perf_counter() - started)))
        return y


def test_adaptive_stylizer_settles_on_a_size_the_model_can_keep_up_with(small_model):
    """A 100 ms budget (10 fps): the governor steps down when calls take over 115 ms, up when
    under 45 ms. A 400x300 frame is a model input of 400x300 plus the margin, rounded up to the
    size multiple (432x336 with 16 px): 160 ms, over budget; at 320x240 (352x272) 60 ms, inside
    the band with room for pre- and post-processing on a busy machine."""
    stylizer = Stylizer.create(small_model, backend="torch", device="cpu")
    contract = stylizer.checkpoint.contract

    def model_input(h: int, w: int) -> tuple[int, int]:
        m, k = contract.margin, contract.size_multiple
        return -(-(h + 2 * m) // k) * k, -(-(w + 2 * m) // k) * k

    full, reduced = model_input(300, 400), model_input(240, 320)
    slow = SlowAboveBackend(stylizer.backend, side=(max(full) + max(reduced)) // 2, slow_s=0.160, fast_s=0.060)
    stylizer.backend = slow
    adaptive = AdaptiveStylizer(stylizer, target_fps=10)
    frame = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    outputs = [adaptive(frame) for _ in range(24)]
    assert all(out.shape == frame.shape for out in outputs)  # the frame keeps its size
    assert adaptive.max_size == 320 and adaptive.describe() == "at 320 px"
    assert slow.sizes[:8] == [full] * 8  # one window of 8 calls at full size
    assert slow.sizes[8:] == [reduced] * 16  # then 320 px, steady


def test_adaptive_stylizer_keeps_full_size_for_a_fast_model_and_the_users_cap(small_model):
    stylizer = Stylizer.create(small_model, backend="torch", device="cpu", options=StyleOptions(max_size=256))
    adaptive = AdaptiveStylizer(stylizer, target_fps=1)  # a budget of a second: never slow
    frame = np.zeros((300, 400, 3), np.uint8)
    for _ in range(10):
        adaptive(frame)
    assert adaptive.governor.max_size is None and adaptive.max_size == 256
    assert stylizer.options.processing_size(300, 400) == (192, 256)
