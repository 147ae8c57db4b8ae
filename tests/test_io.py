import os
import stat

import pytest

from hashbench.io import atomic_write


def test_atomic_write_replaces_only_on_success(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(path, "w") as f:
        f.write("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]  # no temp file left behind
    with atomic_write(path, "w") as f:
        f.write("new")
    assert path.read_text() == "new"


def test_atomic_write_gives_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "b.txt", "w") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o644
