import numpy as np
import pytest

from hashbench.codes import n_words, pack, pack_bytes, sign, unpack
from hashbench.errors import InputError


@pytest.mark.parametrize("k", [1, 7, 8, 12, 48, 63, 64, 65, 100, 128, 129, 256])
def test_pack_unpack_round_trip(k):
    rng = np.random.default_rng(k)
    bits = rng.integers(0, 2, (37, k)).astype(np.uint8)
    packed = pack(bits)
    assert packed.dtype == np.uint64 and packed.shape == (37, n_words(k))
    np.testing.assert_array_equal(unpack(packed, k), bits)
    np.testing.assert_array_equal(pack(2 * bits.astype(np.int8) - 1), packed)  # +-1 input


def test_bit_order_is_little_endian_within_words():
    bits = np.zeros((1, 70), dtype=np.uint8)
    bits[0, [0, 3, 64, 69]] = 1
    packed = pack(bits)
    assert packed[0, 0] == (1 << 0) | (1 << 3)
    assert packed[0, 1] == (1 << 0) | (1 << 5)


def test_sign_maps_zero_to_plus_one():
    np.testing.assert_array_equal(sign([-2.0, 0.0, 3.0, -0.0]), [-1, 1, 1, 1])


def test_pack_bytes_reads_numpy_packbits_output():
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, (5, 20)).astype(np.uint8)
    np.testing.assert_array_equal(pack_bytes(np.packbits(bits, axis=1), 20), pack(bits))
    with pytest.raises(InputError, match="bytes per code"):
        pack_bytes(np.packbits(bits, axis=1), 48)
    junk = np.packbits(bits, axis=1)
    junk[0, -1] |= 1  # a padding bit past bit 20
    with pytest.raises(InputError, match="padding bits"):
        pack_bytes(junk, 20)


@pytest.mark.parametrize("bad, msg", [
    (np.array([[0, 2]]), "only"),
    (np.array([0, 1]), "2-D"),
    (np.array([[np.nan, 1.0]]), "NaN"),
    (np.array([["a", "b"]]), "numeric"),
])
def test_pack_rejects_bad_codes(bad, msg):
    with pytest.raises(InputError, match=msg):
        pack(bad)
