"""Every backend honours one contract; exported models agree with torch."""

import numpy as np
import pytest
import torch

from realtime.backends import OnnxRuntimeBackend, TorchBackend, create_backend
from realtime.errors import InputError
from realtime.stylizer import Stylizer, load_model

# fp32 ONNX Runtime vs torch eager: within 1e-3 of the output range (issue 5's target).
PARITY = 1e-3


@pytest.mark.parametrize("size", [(96, 160), (88, 120)])  # multiples of the small net's 8
def test_onnxruntime_matches_torch(small_model, size, tmp_path, monkeypatch):
    monkeypatch.setenv("STYLECAST_CACHE", str(tmp_path))
    ckpt = load_model(small_model)
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1))
    expected = TorchBackend(ckpt, torch.device("cpu"), torch.float32)(x)
    actual = OnnxRuntimeBackend(ckpt, torch.device("cpu"))(x)
    span = float(expected.max() - expected.min())
    assert span > 0.3  # a real, trained model: the output is an image, not a constant
    assert float((expected - actual).abs().max()) <= PARITY * span
    assert list((tmp_path / "onnx").glob("*.onnx"))  # exported once into the cache


def test_stylizer_output_differs_from_input_like_the_model(small_model):
    frame = (np.linspace(0, 255, 100)[None, :, None] * np.ones((72, 1, 3))).astype(np.uint8)
    out = Stylizer.create(small_model, backend="torch", device="cpu").one(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - frame.astype(int)).mean() > 20  # stylized, not a copy


def test_auto_on_this_cpu_machine_picks_onnxruntime(small_model, tmp_path, monkeypatch):
    monkeypatch.setenv("STYLECAST_CACHE", str(tmp_path))
    if torch.cuda.is_available():
        pytest.skip("this test describes a machine without a GPU")
    backend = create_backend("auto", load_model(small_model), "auto")
    assert backend.name == "onnxruntime" and backend.device.type == "cpu"


def test_unavailable_backends_and_devices_say_so(small_model):
    ckpt = load_model(small_model)
    with pytest.raises(InputError, match="unknown backend 'tflite'"):
        create_backend("tflite", ckpt)
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match="tensorrt is not installed"):
            create_backend("tensorrt", ckpt)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            create_backend("torch", ckpt, "cuda")
    with pytest.raises(InputError, match="unknown device"):
        create_backend("torch", ckpt, "tpu:0")
