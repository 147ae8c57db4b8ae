"""Shared fixtures. Real data comes from $HASHBENCH_DATA (CI: ../shared/data); tests that
need it skip with a reason when it is absent, and a synthetic path covers the same code."""

import os
from pathlib import Path

import pytest

if os.environ.get("HASHBENCH_DATA"):  # absolute, so tests that change folder still find it
    os.environ["HASHBENCH_DATA"] = str(Path(os.environ["HASHBENCH_DATA"]).resolve())


def _data_root() -> Path | None:
    root = os.environ.get("HASHBENCH_DATA")
    return Path(root) if root and Path(root).is_dir() else None


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real-data folder (../shared/data), or skip."""
    root = _data_root()
    if root is None:
        pytest.skip("real data not found: set HASHBENCH_DATA=../shared/data")
    return root


@pytest.fixture(scope="session")
def cifar_dir(data_root) -> Path:
    d = data_root / "cifar-10-batches-bin"
    if not d.is_dir():
        pytest.skip(f"CIFAR-10 binary data not found under {data_root}")
    return d
