"""Speed of loading data: all 60,000 CIFAR-10 images (goal: well under 1 s), next to the
obvious numpy reading (concatenate the batches, one strided transpose) timed in the same run;
and the NUS-WIDE ground truth (81 concepts, both copies, from the official zip)."""

import warnings

import numpy as np
import pytest

from hashbench.datasets import cifar10, nuswide

pytestmark = pytest.mark.bench


def _obvious(folder):
    raw = np.concatenate([np.fromfile(folder / f"{b}.bin", np.uint8).reshape(-1, 3073) for b in cifar10.BATCHES])
    return np.ascontiguousarray(raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


@pytest.mark.benchmark(group="load cifar10")
def test_cifar10_read(benchmark, cifar_dir):
    ds = benchmark(cifar10.read, cifar_dir)
    assert len(ds) == 60000


@pytest.mark.benchmark(group="load cifar10")
def test_cifar10_obvious_numpy(benchmark, cifar_dir):
    images = benchmark(_obvious, cifar_dir)
    assert images.shape == (60000, 32, 32, 3)


@pytest.mark.benchmark(group="load nuswide labels")
def test_nuswide_labels(benchmark, data_root):
    def read():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return nuswide.load_labels(data_root / "nus-wide")

    assert len(benchmark(read).index) == 195_834
