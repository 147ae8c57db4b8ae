"""Stored codes to other libraries: ``hashbench export CELL --faiss FILE`` writes a cell's
database codes as a ``faiss.IndexBinaryFlat`` (their bytes are FAISS's binary layout, see
:mod:`hashbench.codes`), so FAISS searches exactly the codes hashbench scored."""

from . import storedcodes
from .codes import to_bytes
from .errors import InputError
from .io import atomic_write

FAISS_MISSING = "faiss is needed for this: pip install 'hashbench[faiss]'"


def import_faiss():
    try:
        import faiss
    except ImportError:
        raise InputError(FAISS_MISSING) from None
    return faiss


def faiss_index(packed, n_bits: int):
    """An ``IndexBinaryFlat`` of ``8 * ceil(n_bits / 8)`` bits holding the packed codes (the
    padding bits are 0 in every code, so Hamming distances are those of the ``n_bits``)."""
    faiss = import_faiss()
    data = to_bytes(packed, n_bits)
    index = faiss.IndexBinaryFlat(8 * data.shape[1])
    index.add(data)
    return index


def export_faiss(cell: str, out) -> str:
    """Write the database codes of a stored cell (``.npz`` or ``RESULTS.csv:N``) to ``out``."""
    faiss = import_faiss()
    codes = storedcodes.load(storedcodes.resolve(cell))
    index = faiss_index(codes.db_codes, codes.n_bits)
    with atomic_write(out, "wb") as f:
        f.write(faiss.serialize_index_binary(index).tobytes())
    return f"{out}: faiss.IndexBinaryFlat of {index.ntotal} database codes, {index.d} bits ({codes.n_bits} used)"
