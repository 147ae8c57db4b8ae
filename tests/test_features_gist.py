"""GIST: the LEAR C descriptors on real CIFAR-10 images, a plain float64 transcription of
LMgist.m for every mode, size and code path, and the properties the algorithm predicts."""

import numpy as np
import pytest
from sklearn.base import clone

from hashbench.errors import InputError
from hashbench.features import get_extractor
from hashbench.features import gist as gist_module

# ---- the reference: LMgist.m transcribed line by line, float64, one image at a time ----

def ref_create_gabor(orientations, n_rows, n_cols):
    params = [(0.35, 0.3 / 1.85**i, 16 * o**2 / 32**2, np.pi / o * j)
              for i, o in enumerate(orientations) for j in range(o)]
    fx, fy = np.meshgrid(np.arange(-n_cols / 2, n_cols / 2), np.arange(-n_rows / 2, n_rows / 2))
    fr = np.fft.fftshift(np.sqrt(fx**2 + fy**2))
    t = np.fft.fftshift(np.angle(fx + 1j * fy))
    G = []
    for p in params:
        tr = t + p[3]
        tr = tr + 2 * np.pi * (tr < -np.pi) - 2 * np.pi * (tr > np.pi)
        G.append(np.exp(-10 * p[0] * (fr / n_cols / p[1] - 1) ** 2 - 2 * p[2] * np.pi * tr**2))
    return G


def ref_prefilt(img, fc=4):
    """img (rows, cols, c) float64."""
    w = 5
    s1 = fc / np.sqrt(np.log(2))
    img = np.log(img + 1)
    img = np.pad(img, ((w, w), (w, w), (0, 0)), mode="symmetric")
    sn, sm, _c = img.shape
    n = max(sn, sm)
    n = n + n % 2
    img = np.pad(img, ((0, n - sn), (0, n - sm), (0, 0)), mode="symmetric")
    fx, fy = np.meshgrid(np.arange(-n / 2, n / 2), np.arange(-n / 2, n / 2))
    gf = np.fft.fftshift(np.exp(-(fx**2 + fy**2) / s1**2))[:, :, None]
    output = img - np.real(np.fft.ifft2(np.fft.fft2(img, axes=(0, 1)) * gf, axes=(0, 1)))
    localstd = np.sqrt(np.abs(np.fft.ifft2(np.fft.fft2(output.mean(axis=2) ** 2) * gf[:, :, 0])))
    output = output / (0.2 + localstd[:, :, None])
    return output[w:sn - w, w:sm - w]


def ref_down_n(x, N):
    nx = np.fix(np.linspace(0, x.shape[0], N + 1)).astype(int)
    ny = np.fix(np.linspace(0, x.shape[1], N + 1)).astype(int)
    y = np.zeros((N, N))
    for xx in range(N):
        for yy in range(N):
            y[xx, yy] = x[nx[xx]:nx[xx + 1], ny[yy]:ny[yy + 1]].mean()
    return y


def ref_gist(image, mode="lear", color=False, orientations=(8, 8, 8, 8), n_blocks=4, fc=4):
    img = image.astype(np.float64)
    if not color:
        img = img.mean(axis=2, keepdims=True)
    if mode == "lmgist":
        img = img - img.min()
        img = 255 * img / img.max()
    be = 32 if mode == "lmgist" else 0
    out = ref_prefilt(img, fc)
    rows, cols = out.shape[:2]
    G = ref_create_gabor(orientations, rows + 2 * be, cols + 2 * be)
    g = []
    for ch in range(out.shape[2]):
        spectrum = np.fft.fft2(np.pad(out[:, :, ch], be, mode="symmetric"))
        for Gk in G:
            ig = np.abs(np.fft.ifft2(spectrum * Gk))[be:be + rows, be:be + cols]
            g.append(ref_down_n(ig, n_blocks).ravel(order="F"))
    return np.concatenate(g)


def rel_err(X, R):
    return np.linalg.norm(X - R, axis=1) / np.linalg.norm(R, axis=1)


def textured(n, h, w, seed=0):
    """Photo-like test images: smooth random shapes plus noise, full 0-255 range."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    imgs = np.empty((n, h, w, 3))
    for i in range(n):
        base = sum(rng.uniform(20, 60)
                   * np.sin(rng.uniform(0.05, 0.9) * (np.cos(a) * xx + np.sin(a) * yy) + rng.uniform(0, 6))
                   for a in rng.uniform(0, np.pi, 4))
        imgs[i] = base[:, :, None] * rng.uniform(0.5, 1.0, 3) + rng.normal(0, 12, (h, w, 3))
    imgs -= imgs.min(axis=(1, 2, 3), keepdims=True)
    imgs *= 255 / imgs.max(axis=(1, 2, 3), keepdims=True)
    return imgs.round().astype(np.uint8)


# ---- the key test: LEAR's C implementation on real CIFAR-10 images ----

def test_lear_mode_matches_lear_c_reference(data_root):
    ref = np.load(data_root / "gist-lear-reference.npz")
    X = get_extractor("gist").extract(ref["images"])
    R = ref["gist512_gray"]
    assert X.shape == (500, 512) and X.dtype == np.float32
    err = rel_err(X, R)
    assert err.max() < 1e-4, err.max()
    # and not by accident: a different prefilter cut-off is far off
    assert rel_err(get_extractor("gist", fc_prefilt=3).extract(ref["images"][:20]), R[:20]).min() > 1e-2


def test_color_gist_matches_lear_c_reference(data_root):
    ref = np.load(data_root / "gist-lear-reference.npz")
    X = get_extractor("gist", color=True, orientations=(8, 8, 4)).extract(ref["images"][:20])
    assert X.shape == (20, 960)
    assert rel_err(X, ref["gist960_color"]).max() < 1e-4


# ---- every mode, size and code path against the float64 transcription ----

@pytest.mark.parametrize("mode,color,size,orientations,n_blocks", [
    ("lear", False, (32, 32), (8, 8, 8, 8), 4),
    ("lmgist", False, (32, 32), (8, 8, 8, 8), 4),  # 96x96 Gabor grid, output cropped to 32x32
    ("lmgist", False, (24, 40), (8, 8, 8, 8), 4),  # non-square
    ("lear", False, (21, 27), (6, 4), 3),  # odd sizes, uneven blocks, other orientations
    ("lmgist", False, (8, 8), (8, 8, 8, 8), 4),  # digits-sized: boundary extension wider than the image
    ("lear", True, (32, 32), (8, 8, 4), 4),  # colour
    ("lear", False, (128, 128), (8, 8, 8, 8), 4),  # large: the fine scales take the FFT path
])
def test_matches_lmgist_transcription(mode, color, size, orientations, n_blocks):
    imgs = textured(3, *size, seed=sum(size))
    ext = get_extractor("gist", mode=mode, color=color, orientations=orientations, n_blocks=n_blocks)
    X = ext.extract(imgs)
    R = np.array([ref_gist(im, mode, color, orientations, n_blocks) for im in imgs])
    assert X.shape == R.shape == (3, ext.dim())
    assert rel_err(X, R).max() < 1e-5
    assert np.abs(X - R).max() < 1e-4 * np.abs(R).max()


def test_plan_uses_matrix_products_for_small_images_and_fft_for_large():
    kinds = lambda h: [s[0] for s in gist_module._plan(h, h, 0, (8, 8, 8, 8), 4).steps]  # noqa: E731
    assert "fft" not in kinds(32) and {"rows", "cols"} <= set(kinds(32))
    assert "fft" in kinds(128) and "fft" not in kinds(128)[-8:]  # the coarsest scale stays a product


def test_gabor_bank_is_createGabor():
    G = gist_module.gabor_bank((8, 4), 20, 36)
    np.testing.assert_allclose(G, np.array(ref_create_gabor((8, 4), 20, 36)), rtol=1e-12, atol=1e-300)


# ---- properties ----

def test_lmgist_properties():
    imgs = textured(4, 32, 32, seed=3)
    X = get_extractor("gist", mode="lmgist").extract(imgs)
    assert X.shape == (4, 512) and np.isfinite(X).all() and (X >= 0).all()
    assert (X.reshape(4, 32, 16).sum(axis=2) > 0).all()  # every filter responds somewhere


def test_lmgist_invariant_to_brightness_scale_and_offset_lear_is_not():
    """LMgist.m rescales the grey image to [0, 255] first, so a*I + b (a > 0) gives the same
    descriptor; LEAR's mode feeds log(1 + I) the raw values and must see the change."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 101, (3, 32, 32, 3))
    for a, b in ((2, 0), (1, 40), (2, 30)):
        imgs, brighter = x.astype(np.uint8), (a * x + b).astype(np.uint8)
        lm = get_extractor("gist", mode="lmgist")
        np.testing.assert_allclose(lm.extract(brighter), lm.extract(imgs), rtol=2e-4, atol=1e-6)
        lear = get_extractor("gist")
        assert rel_err(lear.extract(brighter), lear.extract(imgs)).min() > 1e-3


def test_constant_image_gives_zero_descriptor():
    imgs = np.full((2, 16, 16, 3), 77, np.uint8)
    assert not get_extractor("gist", mode="lmgist").extract(imgs).any()
    assert np.abs(get_extractor("gist").extract(imgs)).max() < 1e-5  # log(1 + c) is whitened away


def test_deterministic_whatever_the_thread_count_and_batch(monkeypatch):
    imgs = textured(70, 32, 32, seed=7)  # more than one batch of 64
    g = get_extractor("gist")
    monkeypatch.setattr(gist_module, "_n_cpus", lambda: 1)
    one = g.extract(imgs)
    monkeypatch.setattr(gist_module, "_n_cpus", lambda: 2)
    two = g.extract(imgs)
    assert np.array_equal(one, two)
    np.testing.assert_allclose(g.extract(imgs[60:70]), one[60:70], rtol=1e-5, atol=1e-7)


# ---- interface ----

def test_dimension_key_and_clone():
    g = get_extractor("gist", orientations=[4, 4], n_blocks=2)
    assert g.dim() == 32 and g.extract(textured(2, 16, 16)).shape == (2, 32)
    assert get_extractor("gist", color=True, orientations=(8, 8, 4)).dim() == 960
    assert clone(g).key() == g.key() == get_extractor("gist", orientations=(4, 4), n_blocks=2).key()
    assert get_extractor("gist").key() != get_extractor("gist", mode="lmgist").key()
    assert get_extractor("gist").key() == get_extractor("gist", fc_prefilt=4.0, n_blocks=np.int64(4)).key() == (
        'gist/v1:{"color":false,"fc_prefilt":4.0,"mode":"lear","n_blocks":4,"orientations":[8,8,8,8]}')


@pytest.mark.parametrize("params,word", [
    ({"mode": "fast"}, "mode"),
    ({"color": True, "mode": "lmgist"}, "color"),
    ({"color": "yes"}, "color"),
    ({"orientations": []}, "orientations"),
    ({"orientations": [8, 0]}, "orientations"),
    ({"n_blocks": 0}, "n_blocks"),
    ({"fc_prefilt": -1}, "fc_prefilt"),
    ({"blocks": 4}, "blocks"),
])
def test_bad_parameters_are_input_errors(params, word):
    with pytest.raises(InputError, match=word):
        get_extractor("gist", **params)


def test_bad_images_are_input_errors():
    g = get_extractor("gist")
    with pytest.raises(InputError, match="images"):
        g.extract(np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(InputError, match="images"):
        g.extract(np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(InputError, match="images"):
        g.extract(np.zeros((0, 32, 32, 3), np.uint8))
    with pytest.raises(InputError, match="images"):
        g.extract(np.zeros((2, 3, 32, 3), np.uint8))  # fewer rows than grid blocks


@pytest.mark.slow
def test_all_of_cifar10_through_the_store(tmp_path, data_root, cifar_dir):
    """The whole pipeline on the real dataset: every image's descriptor through the store, the
    500 reference images found in dataset order and matching LEAR, then reused as stored."""
    from hashbench.datasets import load_dataset
    from hashbench.features import FeatureStore

    ds = load_dataset("cifar10", data_root)
    X = FeatureStore(tmp_path).get(ds, get_extractor("gist"))
    assert X.shape == (60000, 512) and np.isfinite(X).all() and (X >= 0).all()
    ref = np.load(data_root / "gist-lear-reference.npz")
    test_part = np.flatnonzero(~ds.train_mask)[:500]  # the reference: first 500 of test_batch
    assert np.array_equal(ds.images[test_part], ref["images"])
    assert rel_err(X[test_part], ref["gist512_gray"]).max() < 1e-4
    assert np.array_equal(FeatureStore(tmp_path).get(ds, get_extractor("gist")), X)
