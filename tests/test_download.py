"""Downloads, offline: a small fake archive served by a local HTTP server on 127.0.0.1 that
honours (or ignores) Range requests and can drop the connection half way; never the network."""

import hashlib
import io
import os
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from hashbench import cli
from hashbench.datasets import archives as dl_mod
from hashbench.datasets import download
from hashbench.datasets.archives import Archive, fetch
from hashbench.errors import InputError

FOLDER = "cifar-10-batches-bin"


def make_tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


PAYLOAD = make_tar({
    f"{FOLDER}/test_batch.bin": os.urandom(50_000),  # incompressible, so the archive is large enough to cut
    f"{FOLDER}/batches.meta.txt": b"airplane\n",
})
MD5 = hashlib.md5(PAYLOAD).hexdigest()


@pytest.fixture
def server():
    class Handler(BaseHTTPRequestHandler):
        payload = PAYLOAD
        cut_after = None  # send only this many body bytes, then close
        honour_range = True
        ranges: ClassVar[list] = []  # the Range header of each request, shared by the test and the server

        def do_GET(self):
            cls = type(self)
            cls.ranges.append(self.headers.get("Range"))
            data, start = cls.payload, 0
            asked = self.headers.get("Range")
            if asked and cls.honour_range:
                start = int(asked.removeprefix("bytes=").rstrip("-"))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body if cls.cut_after is None else body[: cls.cut_after])

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    Handler.url = f"http://127.0.0.1:{httpd.server_address[1]}/cifar-10-binary.tar.gz"
    yield Handler
    httpd.shutdown()
    httpd.server_close()


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_download_checks_md5_and_extracts_atomically(tmp_path, server):
    out = fetch(Archive(server.url, MD5, FOLDER), tmp_path, progress=False)
    assert out == tmp_path / FOLDER
    assert listing(tmp_path) == [FOLDER, f"{FOLDER}/batches.meta.txt", f"{FOLDER}/test_batch.bin"]
    assert (out / "batches.meta.txt").read_bytes() == b"airplane\n"
    assert server.ranges == [None]
    fetch(Archive(server.url, MD5, FOLDER), tmp_path, progress=False)  # present: nothing fetched again
    assert server.ranges == [None]


def test_interrupted_download_resumes_with_a_range_request(tmp_path, server):
    server.cut_after = 20_000
    with pytest.raises(InputError,
                       match=r"interrupted after 20,000 of [0-9,]+ bytes; run the same command again to resume"):
        fetch(Archive(server.url, MD5, FOLDER), tmp_path, progress=False)
    assert listing(tmp_path) == ["cifar-10-binary.tar.gz.part"]
    assert (tmp_path / "cifar-10-binary.tar.gz.part").read_bytes() == PAYLOAD[:20_000]
    server.cut_after = None
    fetch(Archive(server.url, MD5, FOLDER), tmp_path, progress=False)
    assert server.ranges == [None, "bytes=20000-"]
    assert listing(tmp_path) == [FOLDER, f"{FOLDER}/batches.meta.txt", f"{FOLDER}/test_batch.bin"]


def test_a_server_ignoring_range_restarts_from_zero(tmp_path, server):
    (tmp_path / "cifar-10-binary.tar.gz.part").write_bytes(b"garbage from an older attempt")
    server.honour_range = False
    fetch(Archive(server.url, MD5, FOLDER), tmp_path, progress=False)
    assert server.ranges == ["bytes=29-"] and (tmp_path / FOLDER / "test_batch.bin").is_file()


def test_a_complete_part_file_is_finished_without_refetching(tmp_path, server):
    (tmp_path / "cifar-10-binary.tar.gz.part").write_bytes(PAYLOAD)
    fetch(Archive(server.url, MD5, FOLDER), tmp_path, progress=False)  # server answers 416
    assert server.ranges == [f"bytes={len(PAYLOAD)}-"] and (tmp_path / FOLDER).is_dir()


def test_wrong_md5_removes_the_download_and_writes_nothing(tmp_path, server):
    with pytest.raises(InputError, match=f"gave md5 {MD5}, expected 0+; the download was removed"):
        fetch(Archive(server.url, "0" * 32, FOLDER), tmp_path, progress=False)
    assert listing(tmp_path) == []


def test_archive_put_by_hand_is_checked_and_extracted_offline(tmp_path):
    def no_network(*args, **kwargs):
        raise AssertionError("must not download")

    archive = Archive("http://127.0.0.1:9/cifar-10-binary.tar.gz", MD5, FOLDER)
    (tmp_path / archive.filename).write_bytes(PAYLOAD[:-1] + b"!")
    with pytest.raises(InputError, match=r"has md5 [0-9a-f]{32}, expected .*damaged or different file"):
        fetch(archive, tmp_path, opener=no_network, progress=False)
    assert listing(tmp_path) == [archive.filename]  # the user's file is left alone, nothing extracted
    (tmp_path / archive.filename).write_bytes(PAYLOAD)
    fetch(archive, tmp_path, opener=no_network, progress=False)
    assert listing(tmp_path) == [FOLDER, f"{FOLDER}/batches.meta.txt", f"{FOLDER}/test_batch.bin"]


def test_archive_with_members_outside_its_folder_is_refused(tmp_path, server):
    server.payload = make_tar({f"{FOLDER}/a": b"1", "../evil": b"2"})
    md5 = hashlib.md5(server.payload).hexdigest()
    with pytest.raises(InputError, match=r"holds '\.\./evil', outside cifar-10-batches-bin/"):
        fetch(Archive(server.url, md5, FOLDER), tmp_path, progress=False)
    assert not (tmp_path / FOLDER).exists() and not (tmp_path.parent / "evil").exists()
    assert [p for p in listing(tmp_path) if p.startswith(".")] == []  # no temporary folder left


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_cli_says_where_to_put_the_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("HASHBENCH_DATA", raising=False)
    url = f"http://127.0.0.1:{_closed_port()}/cifar-10-binary.tar.gz"
    monkeypatch.setitem(dl_mod.ARCHIVES, ("cifar10", "bin"), Archive(url, MD5, FOLDER))
    assert cli.main(["download", "cifar10", "--data-dir", str(tmp_path / "d"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"cannot reach {url}" in err and f"md5 {MD5}" in err and str(tmp_path / "d") in err
    assert f"extracted {FOLDER}/" in err
    assert not (tmp_path / "d").exists()  # nothing written


def test_download_command_fetches_then_finds_it_present(tmp_path, monkeypatch, capsys, server):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("HASHBENCH_DATA", raising=False)
    monkeypatch.setitem(dl_mod.ARCHIVES, ("cifar10", "bin"), Archive(server.url, MD5, FOLDER))
    assert cli.main(["download", "cifar10", "--quiet"]) == 0  # default destination: the user cache folder
    assert f"extracted to {tmp_path / 'cache' / 'hashbench' / FOLDER}" in capsys.readouterr().out
    folder, message = download("cifar10", tmp_path / "elsewhere")
    assert folder == tmp_path / "cache" / "hashbench" / FOLDER and "already present" in message
    assert server.ranges == [None]
    assert cli.main(["download", "nuswide"]) == 2 and "research use only" in capsys.readouterr().err
