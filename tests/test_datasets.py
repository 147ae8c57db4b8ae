"""Datasets: the record, the data lookup, CIFAR-10 in both official formats, digits, the
auto/fallback rule and the ``datasets`` command. Synthetic CIFAR-10 folders (a few records
per batch) cover every code path that the real-data tests (``HASHBENCH_DATA``) check at
full size."""

import hashlib
import pickle
import pickletools
import struct

import numpy as np
import pytest

from hashbench import cli
from hashbench.datasets import (
    DATASETS,
    Dataset,
    cifar10,
    data_roots,
    describe_datasets,
    find_dataset,
    load_dataset,
    resolve_dataset,
)
from hashbench.errors import InputError

N_PER_BATCH = 20
NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(autouse=True)
def _isolated_lookup(monkeypatch, tmp_path_factory):
    """No test sees the real $HASHBENCH_DATA or the user's cache unless it asks for it."""
    monkeypatch.delenv("HASHBENCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(cifar10, "RECORDS_PER_BATCH", N_PER_BATCH)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 6 * N_PER_BATCH).astype(np.uint8)
    pixels = rng.integers(0, 256, (6 * N_PER_BATCH, 3072)).astype(np.uint8)
    return labels, pixels


def write_bin(folder, labels, pixels):
    folder.mkdir(parents=True)
    n = len(labels) // 6
    for i, batch in enumerate(cifar10.BATCHES):
        rec = np.concatenate([labels[i * n : (i + 1) * n, None], pixels[i * n : (i + 1) * n]], axis=1)
        (folder / f"{batch}.bin").write_bytes(rec.tobytes())
    (folder / "batches.meta.txt").write_text("\n".join(NAMES) + "\n\n")
    return folder


def py2_pickle(obj) -> bytes:
    """Protocol-2 pickle bytes as Python 2's cPickle with numpy 1.x wrote the official
    python-version files: str as 8-bit strings, arrays via numpy.core.multiarray._reconstruct."""

    def enc(o) -> bytes:
        if isinstance(o, bool):
            return b"\x88" if o else b"\x89"
        if o is None:
            return b"N"
        if isinstance(o, int):
            return b"J" + struct.pack("<i", o)
        if isinstance(o, bytes):
            return b"U" + bytes([len(o)]) + o if len(o) < 256 else b"T" + struct.pack("<I", len(o)) + o
        if isinstance(o, tuple):
            return b"(" + b"".join(map(enc, o)) + b"t"
        if isinstance(o, list):
            return b"](" + b"".join(map(enc, o)) + b"e"
        if isinstance(o, dict):
            return b"}(" + b"".join(enc(k) + enc(v) for k, v in o.items()) + b"u"
        assert isinstance(o, np.ndarray) and o.dtype == np.uint8
        dtype = b"cnumpy\ndtype\n" + enc((b"u1", 0, 1)) + b"R" + enc((3, b"|", None, None, None, -1, -1, 0)) + b"b"
        array = b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n" + enc((0,)) + enc(b"b") + b"tR"
        return array + b"(" + enc(1) + enc(o.shape) + dtype + enc(False) + enc(o.tobytes()) + b"tb"

    return b"\x80\x02" + enc(obj) + b"."


def write_python(folder, labels, pixels):
    folder.mkdir(parents=True)
    n = len(labels) // 6
    for i, batch in enumerate(cifar10.BATCHES):
        d = {b"batch_label": b"x", b"labels": [int(v) for v in labels[i * n : (i + 1) * n]],
             b"data": pixels[i * n : (i + 1) * n].copy(), b"filenames": [b"f.png"] * n}
        (folder / batch).write_bytes(py2_pickle(d))
    meta = {b"num_cases_per_batch": n, b"label_names": [s.encode() for s in NAMES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(py2_pickle(meta))
    return folder


# --- the record -------------------------------------------------------------------------

def test_dataset_checks_its_fields_and_freezes_arrays():
    images = np.zeros((4, 2, 2, 3), np.uint8)
    ds = Dataset("x", images, np.array([0, 1, 1, 0]), ("a", "b"), np.array([1, 1, 0, 0], bool), "test")
    assert len(ds) == 4 and ds.labels.dtype == np.int64 and not ds.images.flags.writeable
    with pytest.raises(ValueError):
        ds.images[0, 0, 0, 0] = 1
    bad = [
        dict(images=np.zeros((4, 2, 2), np.uint8)),
        dict(images=np.zeros((4, 2, 2, 3), np.float32)),
        dict(labels=np.array([0, 1, 2, 0])),  # class 2 has no name
        dict(labels=np.array([0, 1])),
        dict(train_mask=np.array([1, 1, 0, 0])),
    ]
    base = dict(name="x", images=images, labels=np.array([0, 1, 1, 0]), class_names=("a", "b"),
                train_mask=np.array([1, 1, 0, 0], bool), source="t")
    for change in bad:
        with pytest.raises(InputError, match=r"^x"):
            Dataset(**{**base, **change})


# --- lookup ------------------------------------------------------------------------------

def test_lookup_order_data_dir_then_env_then_cache(tmp_path, monkeypatch, small_batches):
    a, b, cache = tmp_path / "a", tmp_path / "b", tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("HASHBENCH_DATA", str(b))
    assert data_roots(a) == [a, b, cache / "hashbench"]
    assert find_dataset("cifar10", a) is None
    write_bin(cache / "hashbench" / "cifar-10-batches-bin", *small_batches)
    assert find_dataset("cifar10", a) == cache / "hashbench" / "cifar-10-batches-bin"
    write_python(b / "cifar-10-batches-py", *small_batches)
    assert find_dataset("cifar10", a) == b / "cifar-10-batches-py"
    write_bin(a / "cifar-10-batches-bin", *small_batches)
    assert find_dataset("cifar10", a) == a / "cifar-10-batches-bin"
    assert load_dataset("cifar10", a).source == str(a / "cifar-10-batches-bin")


def test_unknown_dataset_and_missing_data_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match=r"unknown dataset 'mnist'.*cifar10"):
        load_dataset("mnist")
    with pytest.raises(InputError,
                       match=r"dataset cifar10: not found .*cifar-10-batches-bin/.*hashbench download cifar10"):
        load_dataset("cifar10", tmp_path)


# --- CIFAR-10, synthetic -------------------------------------------------------------------

def test_binary_layout_against_a_record_by_record_reading(tmp_path, small_batches):
    labels, pixels = small_batches
    ds = cifar10.read(write_bin(tmp_path / "cifar-10-batches-bin", labels, pixels))
    assert ds.images.shape == (120, 32, 32, 3) and ds.images.flags.c_contiguous
    assert ds.class_names == tuple(NAMES)
    assert ds.train_mask.sum() == 100 and ds.train_mask[:100].all()
    np.testing.assert_array_equal(ds.labels, labels)
    raw = b"".join((tmp_path / "cifar-10-batches-bin" / f"{b}.bin").read_bytes() for b in cifar10.BATCHES)
    for i in (0, 7, 119):  # the format's own words: label byte, then red, green, blue planes row-major
        rec = raw[i * 3073 : (i + 1) * 3073]
        assert ds.labels[i] == rec[0]
        for y, x, c in ((0, 0, 0), (0, 31, 1), (31, 0, 2), (5, 17, 1), (31, 31, 2)):
            assert ds.images[i, y, x, c] == rec[1 + c * 1024 + y * 32 + x]


def test_py2_pickle_emitter_is_a_valid_python2_style_pickle():
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    data = py2_pickle({b"data": a, b"labels": [0, 9, 3]})
    ops = {op.name for op, _, _ in pickletools.genops(data)}
    assert {"SHORT_BINSTRING", "GLOBAL"} <= ops and not ops & {"BINUNICODE", "SHORT_BINUNICODE", "BINBYTES"}
    d = pickle.loads(data, encoding="bytes")
    np.testing.assert_array_equal(d[b"data"], a)
    assert d[b"labels"] == [0, 9, 3]


def test_python_format_gives_the_same_arrays(tmp_path, small_batches):
    a = cifar10.read(write_bin(tmp_path / "cifar-10-batches-bin", *small_batches))
    b = cifar10.read(write_python(tmp_path / "cifar-10-batches-py", *small_batches))
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.class_names == b.class_names


class _Boom:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_python_format_refuses_code_in_pickles(tmp_path, small_batches):
    folder = write_python(tmp_path / "cifar-10-batches-py", *small_batches)
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": _Boom()}, protocol=3))
    with pytest.raises(InputError,
                       match=r"data_batch_3 is not a CIFAR-10 python batch \(refusing to load \w+\.system\)"):
        cifar10.read(folder)


def test_truncated_missing_and_malformed_files(tmp_path, small_batches):
    labels, pixels = small_batches
    folder = write_bin(tmp_path / "cifar-10-batches-bin", labels, pixels)
    p = folder / "data_batch_2.bin"
    good = p.read_bytes()
    p.write_bytes(good[:-100])
    with pytest.raises(InputError, match=r"data_batch_2.bin has 61,360 bytes, expected 61,460 .*truncated"):
        cifar10.read(folder)
    p.write_bytes(good[: 3073 * 19])  # truncated on a record boundary
    with pytest.raises(InputError, match=r"data_batch_2\.bin .*truncated"):
        cifar10.read(folder)
    p.write_bytes(bytes([12]) + good[1:])
    with pytest.raises(InputError, match=r"data_batch_2\.bin record 0: label 12 is not a class id"):
        cifar10.read(folder)
    p.unlink()
    with pytest.raises(InputError, match=r"missing CIFAR-10 file .*data_batch_2\.bin"):
        cifar10.read(folder)
    p.write_bytes(good)
    (folder / "batches.meta.txt").write_text("a\nb\n")
    with pytest.raises(InputError, match="lists 2 class names, expected 10"):
        cifar10.read(folder)
    py = write_python(tmp_path / "cifar-10-batches-py", labels, pixels)
    (py / "test_batch").write_bytes(py2_pickle({b"data": pixels[:5].copy(), b"labels": [0] * 5}))
    with pytest.raises(InputError, match=r"test_batch: 'data' must be uint8 \(20, 3,072\), got uint8 \(5, 3072\)"):
        cifar10.read(py)
    (py / "test_batch").write_bytes(b"\x80\x02}q\x00")  # cut off mid-pickle
    with pytest.raises(InputError, match="test_batch is not a CIFAR-10 python batch"):
        cifar10.read(py)


# --- digits --------------------------------------------------------------------------------

def test_digits_are_sklearn_digits_scaled_and_replicated():
    from sklearn.datasets import load_digits

    ds = load_dataset("digits")
    ref = load_digits()
    assert ds.images.shape == (1797, 8, 8, 3) and ds.images.dtype == np.uint8 and ds.train_mask.all()
    np.testing.assert_array_equal(ds.labels, ref.target)
    for v in range(17):  # each grey level v -> round(v * 255 / 16), halves up
        expected = int(np.floor(v * 255 / 16 + 0.5))
        assert (ds.images[..., 0][ref.images == v] == expected).all()
    assert ds.images[..., 0].max() == 255 and ds.images[..., 0].min() == 0
    assert (ds.images == ds.images[..., :1]).all()
    assert ds.class_names == tuple("0123456789")


# --- auto / fallback -------------------------------------------------------------------------

def test_auto_uses_cifar10_when_found_else_digits(tmp_path, small_batches):
    name, notice = resolve_dataset("auto")  # no location given: only the (empty) user cache is searched
    assert name == "digits"
    assert notice.count("\n") == 0 and "CIFAR-10 not found" in notice and "hashbench download cifar10" in notice
    write_bin(tmp_path / "cifar-10-batches-bin", *small_batches)
    name, notice = resolve_dataset("auto", tmp_path)
    assert name == "cifar10" and str(tmp_path / "cifar-10-batches-bin") in notice


def test_explicit_names_never_fall_back(tmp_path):
    assert resolve_dataset("cifar10", tmp_path) == ("cifar10", None)
    with pytest.raises(InputError, match="not found"):
        load_dataset(*resolve_dataset("cifar10", tmp_path)[:1], tmp_path)
    with pytest.raises(InputError, match="unknown dataset 'auto2'"):
        resolve_dataset("auto2")


# --- the datasets command ----------------------------------------------------------------------

def test_datasets_command_lists_data_and_protocols(tmp_path, capsys, small_batches):
    write_bin(tmp_path / "cifar-10-batches-bin", *small_batches)
    assert cli.main(["datasets", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "cifar-10-batches-bin") in out and "not found" in out  # nuswide absent
    for name in ("cifar10-dsh-self", "cifar10-1k", "nuswide-21", "digits-dsh", "59,000", "193,734"):
        assert name in out
    rows = {r["dataset"]: r["data"] for r in describe_datasets(tmp_path)}
    assert set(rows) == set(DATASETS) and rows["nuswide"] == "not found"


# --- CIFAR-10, real data ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_cifar(cifar_dir):
    return cifar10.read(cifar_dir)


def test_real_cifar10_counts_and_pixels(real_cifar, data_root):
    ds = real_cifar
    assert ds.images.shape == (60000, 32, 32, 3) and ds.class_names == tuple(NAMES)
    assert ds.train_mask[:50000].all() and not ds.train_mask[50000:].any()
    assert (np.bincount(ds.labels[ds.train_mask]) == 5000).all()
    assert (np.bincount(ds.labels[~ds.train_mask]) == 1000).all()
    # pixel checksum of the whole array, in hashbench's (n, H, W, 3) order
    pixels_sha256 = "60ebcb038a34c3ec94b409adf941403dd338bfffc6f89a3432d363c420ee6bd0"
    assert hashlib.sha256(ds.images.tobytes()).hexdigest() == pixels_sha256
    # independent checks: the GIST reference holds test images 0-499 as read by another tool,
    # and the training-set channel statistics are the published ones
    ref = np.load(data_root / "gist-lear-reference.npz")
    np.testing.assert_array_equal(ds.images[50000:50500], ref["images"])
    np.testing.assert_array_equal(ds.labels[50000:50500], ref["labels"])
    x = ds.images[:50000].reshape(-1, 3)
    mean = x.sum(0, dtype=np.int64) / len(x)
    var = np.einsum("ij,ij->j", x, x, dtype=np.int64, casting="unsafe") / len(x) - mean**2
    np.testing.assert_allclose(mean / 255, [0.4914, 0.4822, 0.4465], atol=6e-5)
    np.testing.assert_allclose(np.sqrt(var) / 255, [0.2470, 0.2435, 0.2616], atol=6e-5)


def test_real_cifar10_through_the_lookup(data_root, monkeypatch):
    monkeypatch.setenv("HASHBENCH_DATA", str(data_root))
    assert resolve_dataset("auto")[0] == "cifar10"
    assert find_dataset("cifar10") == data_root / "cifar-10-batches-bin"
