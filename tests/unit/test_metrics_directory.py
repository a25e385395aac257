"""Where the workers' metric files live (R-73: several workers without stalls): in memory where
the host has a writable tmpfs, else the temporary directory. Real directories, no mocks."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from quotad.workers import metrics_directory


def test_r73_memory_backed_directory_is_preferred(tmp_path: Path) -> None:
    made = metrics_directory((tmp_path / "absent", tmp_path))
    try:
        assert made.parent == tmp_path and made.name.startswith("quotad-metrics-") and made.is_dir()
    finally:
        shutil.rmtree(made)


def test_r73_falls_back_to_the_temporary_directory(tmp_path: Path) -> None:
    made = metrics_directory((tmp_path / "absent",))
    try:
        assert made.parent == Path(tempfile.gettempdir()) and made.is_dir()
    finally:
        shutil.rmtree(made)


def tmpfs_mounts() -> set[str]:
    with open("/proc/mounts") as mounts:
        return {line.split()[1] for line in mounts if line.split()[2] == "tmpfs"}


@pytest.mark.skipif(not Path("/proc/mounts").exists() or "/dev/shm" not in tmpfs_mounts(),
                    reason="needs /dev/shm as tmpfs (Linux)")
def test_r73_default_is_on_tmpfs() -> None:
    made = metrics_directory()
    try:
        assert made.parent == Path("/dev/shm")
    finally:
        shutil.rmtree(made)
