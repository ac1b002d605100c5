"""Outputs appear complete or not at all: write a temporary file beside, rename when done."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from models.checkpoint import publish, stage_beside
from realtime.errors import InputError


def check_output_folder(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK):
        raise InputError(f"output folder is not writable: {folder}")


def check_output_file(path: Path) -> None:
    """The folder exists and takes files, and `path` is not a folder itself."""
    check_output_folder(path)
    if path.is_dir():
        raise InputError(f"output {path} is a folder; give a file name")


def check_outputs_spare_inputs(pairs: list[tuple[Path, Path]]) -> None:
    """Refuse (input, output) pairs in which an output is one of the inputs (by name, through a
    symlink or `..`, or as a hard link) or two inputs go to the same output: each destroys a file."""
    written: dict[str, Path] = {}
    for source, target in pairs:
        if target.exists():
            victim = next((s for s, _ in pairs if s.exists() and os.path.samefile(s, target)), None)
            if victim is not None:
                raise InputError(f"output {target} would overwrite the input {victim}; choose another output")
        real = os.path.realpath(target)
        if real in written:
            raise InputError(f"{written[real]} and {source} would both be written to {target}; stylize them apart")
        written[real] = source


class AtomicFile:
    """A temporary path beside `path` (same suffix) that becomes `path` on commit()."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        check_output_file(self.path)
        try:
            self.tmp = stage_beside(self.path)
        except OSError as exc:  # os.access says yes to root, and on some network mounts, where writes fail
            raise InputError(f"cannot write in {self.path.parent}: {exc.strerror}") from None

    def commit(self) -> None:
        publish(self.tmp, self.path)

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path; it is renamed to `path` if the block completes, else deleted."""
    output = AtomicFile(path)
    try:
        yield output.tmp
        output.commit()
    finally:
        output.discard()
