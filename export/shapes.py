"""The example input that torch.export traces with, shared by the ONNX and AOTInductor exporters."""

from __future__ import annotations


def sample_size(requested: tuple[int, int], size_multiple: int) -> tuple[int, int]:
    """`requested` rounded down to the size multiple and at least two multiples per side.

    The exporters declare height and width as Dim(min=2) * size_multiple (a side of one multiple
    could be 1 after the deepest downsampling, which torch.export specializes to a constant), so
    the sample must lie in that range: a 128-multiple U-Net traces at 256, not 128.
    """
    height, width = (max(2 * size_multiple, side // size_multiple * size_multiple) for side in requested)
    return height, width
