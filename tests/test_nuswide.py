"""NUS-WIDE: label reading in the official layout (folders or the official zips), concept
selection, the corrupt-entry rule, the 195,834 figure on the real labels, and image loading
on a small official-layout folder made here (the real images are not on this machine)."""

import zipfile

import numpy as np
import pytest
from PIL import Image

from hashbench.datasets import load_dataset, load_nuswide_labels, nuswide
from hashbench.errors import InputError

CONCEPTS = ["airport", "animal", "beach", "lake", "sky"] + [f"concept{j:02d}" for j in range(19)]  # 24 > 21


def make_labels(n=40, seed=0):
    """(n, 24) 0/1 labels, each concept with its own frequency, every concept present."""
    rng = np.random.default_rng(seed)
    p = rng.permutation(np.linspace(0.02, 0.4, len(CONCEPTS)))
    y = (rng.random((n, len(CONCEPTS))) < p).astype(np.uint8)
    y[np.arange(len(CONCEPTS)) % n, np.arange(len(CONCEPTS))] = 1
    return y


def lines(v) -> bytes:
    return "".join(f"{int(x)}\n" for x in v).encode()


def write_layout(root, y, zipped=False, train=None, image_size=None):
    """The official layout in ``root`` (a ``nus-wide`` folder): concepts, ground truth
    (AllLabels + TrainTestLabels), optionally image lists and images."""
    root.mkdir(parents=True, exist_ok=True)
    n = len(y)
    train = np.arange(n) % 3 != 0 if train is None else train
    files = {}
    for j, c in enumerate(CONCEPTS):
        files[f"AllLabels/Labels_{c}.txt"] = lines(y[:, j])
        files[f"TrainTestLabels/Labels_{c}_Train.txt"] = lines(y[train, j])
        files[f"TrainTestLabels/Labels_{c}_Test.txt"] = lines(y[~train, j])
    concepts = ("\r\n".join(CONCEPTS) + "\r\n").encode()
    if zipped:
        with zipfile.ZipFile(root / "Groundtruth.zip", "w") as z:
            for name, data in files.items():
                z.writestr(name, data)
        with zipfile.ZipFile(root / "ConceptsList.zip", "w") as z:
            z.writestr("Concepts81.txt", concepts)
    else:
        for name, data in files.items():
            (root / "Groundtruth" / name).parent.mkdir(parents=True, exist_ok=True)
            (root / "Groundtruth" / name).write_bytes(data)
        (root / "Concepts81.txt").write_bytes(concepts)
    if image_size is not None:
        rels = [f"{CONCEPTS[i % 5]}\\{i:04d}_{1000 + i}.jpg" for i in range(n)]
        (root / "ImageList").mkdir()
        (root / "ImageList" / "Imagelist.txt").write_text("\n".join(f"C:\\ImageData\\Flickr\\{r}" for r in rels) + "\n")
        (root / "ImageList" / "TrainImagelist.txt").write_text(
            "\n".join(f"C:\\ImageData\\Flickr\\{r}" for r, t in zip(rels, train, strict=True) if t) + "\n"
        )
        rng = np.random.default_rng(1)
        for i, r in enumerate(rels):
            p = root / "Flickr" / r.replace("\\", "/")
            p.parent.mkdir(parents=True, exist_ok=True)
            h, w = image_size
            pixels = (np.full((h, w, 3), (i * 7) % 256, np.uint8) if i % 2
                      else rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
            Image.fromarray(pixels).save(p.with_suffix(".png"), format="PNG")  # lossless, so pixels can be checked
            p.with_suffix(".png").rename(p)
    return root


@pytest.mark.parametrize("zipped", [False, True])
def test_labels_select_the_most_frequent_concepts(tmp_path, zipped):
    y = make_labels()
    lab = nuswide.load_labels(write_layout(tmp_path / "nus-wide", y, zipped), n_concepts=3)
    counts = y.sum(0)
    top = np.argsort(-counts, kind="stable")[:3]  # obvious reference
    assert lab.concepts == tuple(CONCEPTS[i] for i in top)
    keep = np.flatnonzero(y[:, top].any(1))
    np.testing.assert_array_equal(lab.index, keep)
    np.testing.assert_array_equal(lab.labels, y[keep][:, top].astype(bool))
    assert lab.n_official == len(y) and lab.defects == ()


def test_ties_keep_the_concept_list_order(tmp_path):
    y = np.zeros((10, len(CONCEPTS)), np.uint8)
    y[:4, 4] = 1  # sky 4
    y[:2, 0] = 1  # airport 2
    y[5:7, 2] = 1  # beach 2: tie with airport, which comes first in Concepts81.txt
    lab = nuswide.load_labels(write_layout(tmp_path / "nus-wide", y), n_concepts=2)
    assert lab.concepts == ("sky", "airport")


def test_corrupt_split_entry_is_reported_and_read_as_zero(tmp_path):
    y = make_labels()
    root = write_layout(tmp_path / "nus-wide", y)
    p = root / "Groundtruth/TrainTestLabels/Labels_lake_Train.txt"
    v = p.read_bytes().split(b"\n")
    k = next(i for i, s in enumerate(v) if s == b"0")
    v[k] = b"-1130179"
    p.write_bytes(b"\n".join(v))
    with pytest.warns(UserWarning, match=rf"Labels_lake_Train.txt line {k + 1}: '-1130179' is not 0 or 1; read as 0"):
        lab = nuswide.load_labels(root)
    assert len(lab.defects) == 1 and f"line {k + 1}" in lab.defects[0]
    # a corrupt entry that hides a positive makes the two copies disagree: an error
    k1 = next(i for i, s in enumerate(v) if s == b"1")
    v[k], v[k1] = b"0", b"x"
    p.write_bytes(b"\n".join(v))
    with pytest.raises(InputError, match=rf"ground truth disagrees for 'lake': .*line {k1 + 1}: 'x' is not 0 or 1"):
        nuswide.load_labels(root)


def test_corrupt_or_short_alllabels_are_errors(tmp_path):
    y = make_labels()
    root = write_layout(tmp_path / "nus-wide", y)
    p = root / "Groundtruth/AllLabels/Labels_beach.txt"
    good = p.read_bytes()
    p.write_bytes(good.replace(b"0\n", b"2\n", 3))
    with pytest.raises(InputError, match=r"Labels_beach.txt line \d+: '2' is not 0 or 1 \(corrupt label file\)"):
        nuswide.load_labels(root)
    p.write_bytes(good[:-4])
    with pytest.raises(InputError, match=r"Labels_beach\.txt has 38 lines, the other label files 40"):
        nuswide.load_labels(root)
    p.unlink()
    with pytest.raises(InputError, match=r"missing NUS-WIDE label file AllLabels/Labels_beach\.txt"):
        nuswide.load_labels(root)
    (root / "Concepts81.txt").unlink()
    with pytest.raises(InputError, match="missing NUS-WIDE concept list"):
        nuswide.load_labels(root)
    with pytest.raises(InputError, match="missing NUS-WIDE ground truth"):
        nuswide.load_labels(tmp_path)


def test_crlf_and_trailing_blank_lines_read_like_plain_lines(tmp_path):
    y = make_labels()
    root = write_layout(tmp_path / "nus-wide", y)
    p = root / "Groundtruth/AllLabels/Labels_sky.txt"
    p.write_bytes(p.read_bytes().replace(b"\n", b"\r\n") + b"\r\n")
    lab = nuswide.load_labels(root, n_concepts=len(CONCEPTS))
    np.testing.assert_array_equal(lab.labels, y[lab.index].astype(bool)[:, np.argsort(-y.sum(0), kind="stable")])


def _slow_resize(img, size):
    """Bilinear, half-pixel centres, clamped edges: written out pixel by pixel."""
    h, w = img.shape[:2]
    out = np.zeros((size, size, 3))
    for oy in range(size):
        sy = min(max((oy + 0.5) * h / size - 0.5, 0), h - 1)
        y0 = int(np.floor(sy))
        y1, fy = min(y0 + 1, h - 1), sy - y0
        for ox in range(size):
            sx = min(max((ox + 0.5) * w / size - 0.5, 0), w - 1)
            x0 = int(np.floor(sx))
            x1, fx = min(x0 + 1, w - 1), sx - x0
            top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
            bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
            out[oy, ox] = top * (1 - fy) + bottom * fy
    return np.floor(out + 0.5).astype(np.uint8)


def test_resize_bilinear():
    rng = np.random.default_rng(0)
    for h, w in ((100, 75), (64, 64), (7, 130), (3, 3)):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        np.testing.assert_array_equal(nuswide.resize_bilinear(img, 16), _slow_resize(img.astype(float), 16))
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(nuswide.resize_bilinear(img), img)  # same size: identity
    # exact 2x reduction averages each 2x2 block (no wider antialiasing kernel)
    small = nuswide.resize_bilinear(img, 32)
    block = img.reshape(32, 2, 32, 2, 3).astype(float).mean((1, 3))
    np.testing.assert_array_equal(small, np.floor(block + 0.5).astype(np.uint8))


def test_images_load_from_an_official_layout_folder(tmp_path):
    y = make_labels(n=24)
    train = np.arange(24) % 4 != 0
    write_layout(tmp_path / "nus-wide", y, zipped=True, train=train, image_size=(48, 80))
    ds = load_dataset("nuswide", tmp_path)
    top = np.argsort(-y.sum(0), kind="stable")[:21]
    keep = np.flatnonzero(y[:, top].any(1))
    assert ds.name == "nuswide" and ds.images.shape == (len(keep), 64, 64, 3)
    np.testing.assert_array_equal(ds.labels, y[keep][:, top].astype(bool))
    np.testing.assert_array_equal(ds.train_mask, train[keep])
    for j, i in list(enumerate(keep))[:3]:  # the slow reference is slow: two noise images, one flat
        p = tmp_path / "nus-wide" / "Flickr" / CONCEPTS[i % 5] / f"{i:04d}_{1000 + i}.jpg"
        np.testing.assert_array_equal(ds.images[j], _slow_resize(np.asarray(Image.open(p)).astype(float), 64))
    missing = tmp_path / "nus-wide" / "Flickr" / CONCEPTS[keep[-1] % 5] / f"{keep[-1]:04d}_{1000 + keep[-1]}.jpg"
    missing.write_bytes(b"not an image")
    with pytest.raises(InputError, match="cannot read NUS-WIDE image"):
        load_dataset("nuswide", tmp_path)
    missing.unlink()
    with pytest.raises(InputError, match=r"1 of \d+ NUS-WIDE images are missing"):
        load_dataset("nuswide", tmp_path)


def test_labels_only_folder_says_images_are_missing(tmp_path):
    write_layout(tmp_path / "nus-wide", make_labels(), zipped=True)
    with pytest.raises(InputError, match=r"NUS-WIDE images not found.*load_nuswide_labels"):
        load_dataset("nuswide", tmp_path)
    assert len(load_nuswide_labels(tmp_path, n_concepts=2).concepts) == 2


def test_real_labels_give_195834_images(data_root):
    with pytest.warns(UserWarning, match="Labels_lake_Train.txt line 78373: '-1130179'"):
        lab = load_nuswide_labels(data_root)
    assert lab.n_official == 269_648 and lab.labels.shape == (195_834, 21)
    assert lab.concepts == (
        "sky", "clouds", "person", "water", "animal", "grass", "buildings", "window", "plants", "lake", "ocean",
        "road", "flowers", "sunset", "reflection", "rocks", "vehicle", "snow", "tree", "beach", "mountain",
    )
    assert len(lab.defects) == 1
    assert lab.labels.any(1).all() and lab.labels.sum() > len(lab.index)  # multi-label
