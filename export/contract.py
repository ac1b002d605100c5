"""The input contract an exported file carries, so that the file alone is a usable model.

ONNX files keep it in their metadata properties, AOTInductor packages in their metadata, both
under METADATA_KEY as JSON; `checkpoint_from_contract` reads it back into a Checkpoint without
weights (what the runtime needs to feed the file and read its output); `contract_record` reads
just the contract, without torch (the ONNX Runtime path that never imports it).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from stylecast.models.contract import CheckpointError, Family, InputContract

if TYPE_CHECKING:
    from stylecast.models.checkpoint import Checkpoint

METADATA_KEY = "stylecast.contract"


def contract_metadata(ckpt: Checkpoint, **extra: str) -> dict[str, str]:
    """{METADATA_KEY: JSON of the checkpoint's contract, family and styles, and `extra`}."""
    c = ckpt.contract
    return {
        METADATA_KEY: json.dumps(
            {
                "architecture": ckpt.architecture,
                "kwargs": ckpt.kwargs,  # the module's arguments (what the runtime needs of them: norm_eps)
                "family": ckpt.family.value,
                "styles": ckpt.styles,
                "input_range": list(c.range),
                "output_range": list(c.output_range),
                "channel_order": c.channel_order,
                "size_multiple": c.size_multiple,
                "margin": c.margin,
                "input_transform": c.transform,
                "layout": "NCHW",
                **extra,
            }
        )
    }


def contract_record(metadata: dict[str, str], source: str) -> tuple[InputContract, Family, dict[str, Any]]:
    """The input contract and family an exported file's metadata declares, and the whole record
    (with the extra entries, e.g. an AOT package's device and dtype). CheckpointError when the
    file was not written by `stylecast export`."""
    if METADATA_KEY not in metadata:
        raise CheckpointError(f"{source} carries no stylecast contract: export it with `stylecast export`")
    try:
        record = json.loads(metadata[METADATA_KEY])
        contract = InputContract(
            range=tuple(record["input_range"]),
            channel_order=record["channel_order"],
            size_multiple=int(record["size_multiple"]),
            margin=int(record["margin"]),
            output_range=tuple(record["output_range"]),
            transform=record["input_transform"],
        )
        return contract, Family(str(record["family"])), record
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{source}: its stylecast contract is unreadable ({exc})") from None


def checkpoint_from_contract(metadata: dict[str, str], source: str) -> tuple[Checkpoint, dict[str, Any]]:
    """The weightless Checkpoint an exported file's metadata describes, and the whole record."""
    from stylecast.models.checkpoint import Checkpoint  # imports torch, which contract_record must not

    contract, family, record = contract_record(metadata, source)
    try:
        ckpt = Checkpoint(
            architecture=str(record["architecture"]),
            kwargs=dict(record.get("kwargs", {})),
            state_dict={},
            contract=contract,
            family=family,
            styles=[str(s) for s in record["styles"]],
            training={"exported": source},
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{source}: its stylecast contract is unreadable ({exc})") from None
    return ckpt, record
