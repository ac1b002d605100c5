"""Exporters and compiled backends agree with torch; engine-cache keys change when they must."""

import importlib.util
import json

import onnx
import pytest
import torch

from stylecast.export.check import max_differences, onnx_runner
from stylecast.export.contract import METADATA_KEY
from stylecast.export.onnx import export_onnx
from stylecast.export.tensorrt import ShapeProfile, engine_key
from stylecast.models.checkpoint import Checkpoint, InputContract
from stylecast.realtime.backends import CompiledBackend, TorchBackend
from stylecast.training.fast import NETS

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def random_checkpoint(net: str) -> Checkpoint:
    torch.manual_seed(0)
    architecture, net_class, kwargs = NETS[net]
    several = net.startswith("multistyle")
    kwargs = {**kwargs, "num_styles": 3} if several else dict(kwargs)
    module = net_class(**kwargs)
    for name, value in module.state_dict().items():  # distinct styles, so the style input matters
        if name.endswith(("scale", "shift")):
            value.uniform_(0.5, 1.5)
    return Checkpoint(
        architecture,
        kwargs,
        module.state_dict(),
        InputContract(size_multiple=module.size_multiple),
        family="multistyle" if several else "johnson",
        styles=["a", "b", "c"] if several else ["x"],
    )


@pytest.mark.parametrize("net", ["standard", "small", "small_plain", "multistyle", "multistyle_small"])
def test_onnx_export_matches_torch_at_two_sizes_and_carries_the_contract(net, tmp_path):
    ckpt = random_checkpoint(net)
    path = export_onnx(ckpt, tmp_path / "m.onnx")
    model = onnx.load(str(path))
    contract = {p.key: p.value for p in model.metadata_props}[METADATA_KEY]
    declared = json.loads(contract)
    assert declared["size_multiple"] == ckpt.contract.size_multiple and declared["channel_order"] == "RGB"
    assert declared["input_range"] == [0.0, 1.0] and declared["layout"] == "NCHW"
    # fp32: within 1e-3 of the output range
    assert max(max_differences(ckpt, onnx_runner(path), sizes=[(64, 96), (184, 248)]).values()) < 1e-3


def test_the_default_exports_with_its_last_upsampling_at_half_resolution(tmp_path):
    from stylecast.realtime.stylizer import load_model

    path = export_onnx(load_model("starry_night-small"), tmp_path / "m.onnx")
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    # two bilinear Resizes inside; the full-resolution one became a pixel shuffle
    assert ops.count("Resize") == 2 and ops.count("DepthToSpace") == 1


def test_a_net_the_trace_cannot_export_goes_through_torch_export(tmp_path, monkeypatch):
    """The fast traced export is tried first; where it fails, torch.export's exporter gives the
    same model, multi-style conditions and dynamic sizes included."""
    export = torch.onnx.export

    def untraceable(*args, dynamo, **kwargs):
        if not dynamo:
            raise RuntimeError("cannot trace this net")
        return export(*args, dynamo=dynamo, **kwargs)

    ckpt = random_checkpoint("multistyle_small")
    traced = export_onnx(ckpt, tmp_path / "traced.onnx")
    monkeypatch.setattr(torch.onnx, "export", untraceable)
    exported = export_onnx(ckpt, tmp_path / "exported.onnx")
    for path in (traced, exported):
        assert max(max_differences(ckpt, onnx_runner(path), sizes=[(64, 96), (184, 248)]).values()) < 1e-3
    graphs = [onnx.load(str(p)).graph for p in (traced, exported)]
    assert [n.op_type for n in graphs[0].node] != [n.op_type for n in graphs[1].node]  # two exporters ran


@pytest.mark.parametrize(
    ("architecture", "kwargs", "sizes"),
    [
        ("resnet_generator", {"width": 8, "blocks": 2}, ((64, 96), (92, 124))),
        ("unet_generator", {"depth": 5, "width": 8}, ((64, 96), (96, 160))),
        ("unet_generator", {"depth": 7, "width": 4}, ((128, 256), (384, 256))),  # pix2pix's 128 net
        ("unet_generator", {"depth": 5, "width": 8, "upsample": "resize"}, ((64, 96), (96, 160))),
    ],
)
def test_gan_generators_export_with_their_contract(architecture, kwargs, sizes, tmp_path):
    from stylecast.models.registry import ARCHITECTURES

    torch.manual_seed(0)
    module = ARCHITECTURES[architecture](**kwargs)
    contract = InputContract(range=(-1.0, 1.0), size_multiple=module.size_multiple, output_range=(-1.0, 1.0))
    ckpt = Checkpoint(architecture, kwargs, module.state_dict(), contract, family="translator", styles=["a-to-b"])
    path = export_onnx(ckpt, tmp_path / "g.onnx")
    declared = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}[METADATA_KEY])
    assert declared["input_range"] == [-1.0, 1.0] and declared["output_range"] == [-1.0, 1.0]
    for size in sizes:
        assert (
            max(max_differences(ckpt, onnx_runner(path), sizes=[size]).values()) < 2e-3
        )  # outputs span [-1, 1]: 1e-3 of the range


def test_compiled_backend_matches_eager(small_model):
    from stylecast.realtime.stylizer import load_model

    ckpt = load_model(small_model)
    eager = TorchBackend(ckpt, torch.device("cpu"), torch.float32)
    compiled = CompiledBackend(ckpt, torch.device("cpu"), torch.float32)
    x = torch.rand(1, 3, 64, 96)
    assert float((eager(x) - compiled(x)).abs().max()) < 1e-3


@pytest.mark.slow
def test_aot_package_round_trip_on_this_device(small_model, tmp_path):
    from stylecast.export.aot import export_aot, load_aot
    from stylecast.realtime.stylizer import load_model

    ckpt = load_model(small_model)
    package = load_aot(
        export_aot(ckpt, tmp_path / "m.pt2", torch.device("cpu"), sample_size=(64, 64), max_size=(512, 512))
    )
    reference = ckpt.build_for_inference()  # what the package was made from
    with torch.inference_mode():
        for size in ((64, 96), (120, 160)):  # dynamic height and width
            x = torch.rand(2, 3, *size)
            assert float((package(x) - reference(x)).abs().max()) < 1e-3


@pytest.mark.slow
def test_an_aot_package_is_a_model_by_itself(small_model, tmp_path):
    """The package carries its contract and what it was compiled for: `--model m.pt2` stylizes
    as the checkpoint does, and a package for the CPU refuses --device cuda."""
    import numpy as np

    from stylecast.core.errors import InputError
    from stylecast.export.aot import export_aot
    from stylecast.realtime.stylizer import Stylizer, load_model

    path = export_aot(load_model(small_model), tmp_path / "m.pt2", torch.device("cpu"), max_size=(512, 512))
    frame = np.random.default_rng(0).integers(0, 256, (72, 100, 3), dtype=np.uint8)
    exported, reference = Stylizer.create(str(path)), Stylizer.create(small_model, "torch", "cpu")
    assert exported.backend.name == "aot" and exported.checkpoint.contract == reference.checkpoint.contract
    assert np.abs(exported.one(frame).astype(int) - reference.one(frame)).max() <= 1
    with pytest.raises(InputError, match="compiled for cpu, not cuda"):
        Stylizer.create(str(path), device="cuda")


def test_engine_cache_key_depends_on_everything_an_engine_depends_on():
    base = dict(onnx_bytes=b"model", gpu_name="NVIDIA H100", trt_version="10.9", fp16=True, profile=ShapeProfile())
    key = engine_key(**base)
    assert key == engine_key(**base)  # stable
    for change in (
        {"onnx_bytes": b"other model"},
        {"gpu_name": "NVIDIA H200"},
        {"trt_version": "10.10"},
        {"fp16": False},
        {"profile": ShapeProfile(max=(2160, 3840))},
    ):
        assert engine_key(**{**base, **change}) != key, change


def test_shape_profiles_parse_and_round_to_the_size_multiple():
    profile = ShapeProfile.parse("60x60,719x1279,1080x1920", multiple=8)
    assert profile.min == (64, 64) and profile.opt == (720, 1280) and profile.max == (1080, 1920)
    assert profile.contains(720, 1280) and not profile.contains(2160, 3840)
    with pytest.raises(ValueError, match="must grow"):
        ShapeProfile.parse("720x1280,64x64,1080x1920")
    with pytest.raises(ValueError, match="must look like"):
        ShapeProfile.parse("big")


@pytest.mark.skipif(
    not HAS_TENSORRT,
    reason="TensorRT is not installable here: its wheels fetch their libraries from NVIDIA's index at install time",
)
@pytest.mark.skipif(not torch.cuda.is_available(), reason="TensorRT needs a CUDA GPU")
@pytest.mark.trt
def test_tensorrt_engine_matches_torch(small_model, tmp_path):
    from stylecast.export.tensorrt import export_engine
    from stylecast.realtime.stylizer import load_model
    from stylecast.realtime.tensorrt import TensorRTBackend

    ckpt = load_model(small_model)
    device = torch.device("cuda")
    profile = ShapeProfile((64, 64), (360, 640), (720, 1280))
    path = export_engine(ckpt, tmp_path / "model.engine", fp16=True, profile=profile)
    engine = TensorRTBackend(path, device, fp16=True, profile=profile)
    reference = ckpt.build_for_inference().to(device)  # what the engine was made from
    x = torch.rand(1, 3, 360, 640, device=device)
    with torch.inference_mode():
        expected = reference(x)
    span = float(expected.max() - expected.min())
    assert float((engine(x).float() - expected).abs().max()) < 1e-2 * span  # fp16: within 1e-2 of the range


@pytest.mark.slow
def test_every_shipped_model_exports_to_onnx_and_matches_torch(capsys, tmp_path):
    """`stylecast export NAME` for each shipped model: written, and within 1e-4 of torch at both
    probe sizes (the U-Net translator at multiples of 128)."""
    from stylecast.cli.main import main
    from stylecast.models.zoo import SHIPPED

    for name in SHIPPED:
        assert main(["export", name, "-o", str(tmp_path / f"{name}.onnx"), "--json"]) == 0
        differences = json.loads(capsys.readouterr().out)["max_abs_difference"]
        assert max(differences.values()) < 1e-4, (name, differences)
