"""Fetch an official archive once, safely: a progress bar, a ``.part`` file that a re-run
resumes with an HTTP Range request, the published md5 checked before anything is used, an
atomic rename of the finished archive, and extraction into a temporary folder that is
renamed into place only when complete (so an interrupted run never leaves a half folder).
"""

import hashlib
import http.client
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

from ..errors import InputError


class Archive(NamedTuple):
    url: str
    md5: str  # as published with the archive
    folder: str  # the single top-level folder the archive extracts to

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


ARCHIVES = {
    ("cifar10", "bin"): Archive(
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530",
        "cifar-10-batches-bin"
    ),
    ("cifar10", "python"): Archive(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
        "cifar-10-batches-py"
    ),
}
CHUNK = 1 << 20


def offline_hint(archive: Archive, dest: Path) -> str:
    return (
        f"without internet, fetch {archive.url} (md5 {archive.md5}) elsewhere and put {archive.filename} "
        f"in {dest} (the same command then checks and extracts it), or put the extracted {archive.folder}/ there"
    )


def md5sum(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def fetch(archive: Archive, dest, opener=urllib.request.urlopen, progress: bool = True) -> Path:
    """Make ``dest/archive.folder`` exist and return it. An archive already in ``dest`` is
    used as is (after the md5 check); otherwise it is downloaded, resuming a ``.part``."""
    dest = Path(dest)
    target = dest / archive.folder
    if target.is_dir():
        return target
    file = dest / archive.filename
    if not file.is_file():
        part = file.with_name(file.name + ".part")
        _download(archive, part, dest, opener, progress)
        if (got := md5sum(part)) != archive.md5:
            part.unlink()
            raise InputError(
                f"download: {archive.url} gave md5 {got}, expected {archive.md5}; the download was removed, run again"
            )
        os.replace(part, file)
    elif (got := md5sum(file)) != archive.md5:
        raise InputError(
            f"download: {file} has md5 {got}, expected {archive.md5}: a damaged or different file; "
            "delete it and run again"
        )
    _extract(file, dest, archive.folder)
    file.unlink()
    return target


def _download(archive: Archive, part: Path, dest: Path, opener, progress: bool) -> None:
    from ..progress import progress as progress_bar

    have = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        resp = opener(urllib.request.Request(archive.url, headers=headers), timeout=60)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to fetch: the .part is complete (md5 decides)
            return
        raise InputError(f"download: {archive.url} answered HTTP {e.code} {e.reason}; "
                         f"{offline_hint(archive, dest)}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise InputError(f"download: cannot reach {archive.url} ({reason}); {offline_hint(archive, dest)}") from None
    dest.mkdir(parents=True, exist_ok=True)
    with resp:
        status = getattr(resp, "status", 200)
        start = _range_start(resp.headers.get("Content-Range")) if status == 206 else 0
        if start != have:  # the server ignored the Range request: start over
            have = 0
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        with open(part, "ab" if have else "wb") as f, progress_bar(
            total, archive.filename, unit="B", enabled=progress, initial=have, unit_scale=True
        ) as bar:
            try:
                while chunk := resp.read(CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as e:
                raise InputError(
                    f"download: interrupted after {f.tell():,} bytes ({e}); run the same command again to resume"
                ) from None
            size = f.tell()
    if total is not None and size != total:
        raise InputError(f"download: interrupted after {size:,} of {total:,} bytes; "
                         "run the same command again to resume")


def _range_start(content_range: str | None) -> int | None:
    m = re.match(r"bytes (\d+)-", content_range or "")
    return int(m.group(1)) if m else None


def _extract(file: Path, dest: Path, folder: str) -> None:
    tmp = Path(tempfile.mkdtemp(dir=dest, prefix=f".{folder}."))
    try:
        with tarfile.open(file) as tar:
            for m in tar.getmembers():
                if m.name.split("/", 1)[0] != folder:
                    raise InputError(f"download: {file} holds {m.name!r}, outside {folder}/: not the expected archive")
            tar.extractall(tmp, filter="data")
        os.replace(tmp / folder, dest / folder)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise InputError(f"download: cannot extract {file} ({e})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
