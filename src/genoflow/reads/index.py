"""The minimap2 index of a reference: built once per reference as a step output, loaded once per Python worker.

``mappy.Aligner`` cannot be pickled, so it is never broadcast: each Python worker loads the index file
itself (an index on HDFS is copied to a local temporary file first) and keeps the aligner for the tasks
that follow.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from genoflow.errors import InputError

__all__ = ["build_index", "load_aligner"]

_ALIGNERS: dict[tuple[str, str], object] = {}  # per Python worker: (index uri, preset) -> mappy.Aligner



def build_index(storage, reference_uri: str, index_uri: str, *, preset: str = "sr") -> str:
    """Build the minimap2 index of a reference FASTA into ``index_uri``, unless it is there already.

    Parameters
    ----------
    storage : HadoopStorage
        Reads the FASTA and writes the index.
    reference_uri : str
        The reference FASTA (plain or gzip), on any storage: it is copied to a local file first.
    index_uri : str
        Where the ``.mmi`` goes (a path keyed by the reference's content, so a committed index is reused).
    preset : str
        minimap2 preset whose k-mer and window sizes the index uses (``sr``: short reads).

    Returns
    -------
    str
        ``index_uri``.

    Raises
    ------
    InputError
        Naming the reference, when minimap2 cannot index it.
    """
    import mappy

    if storage.exists(index_uri):
        return index_uri
    with tempfile.TemporaryDirectory(prefix="genoflow-index-") as folder:
        fasta, mmi = os.path.join(folder, "reference.fa"), os.path.join(folder, "ref.mmi")
        with storage.ranged(reference_uri).open_stream() as source, open(fasta, "wb") as local:
            shutil.copyfileobj(source, local, 1 << 20)
        aligner = mappy.Aligner(fn_idx_in=fasta, preset=preset, fn_idx_out=mmi)
        if not aligner or not aligner.seq_names:
            raise InputError(reference_uri, "minimap2 cannot index this reference: is it a FASTA file?")
        del aligner  # mappy writes the index while building; drop the in-memory copy before the upload
        storage.put(mmi, index_uri)  # temp + rename: readers see the whole index or none
    return index_uri


def load_aligner(index, preset: str = "sr"):
    """The ``mappy.Aligner`` of a minimap2 index, loaded once per Python process.

    Parameters
    ----------
    index : str or RangedFile
        A local ``.mmi`` path or ``file://`` URI, or a :class:`~genoflow.storage.ranged.RangedFile` (built by
        the driver with ``storage.ranged``; an index on HDFS is copied once to a local temporary file).
    preset : str
        minimap2 preset of the mapping options.
    """
    from genoflow.storage.ranged import RangedFile

    ranged = index if isinstance(index, RangedFile) else RangedFile(index)
    key = (ranged.uri, preset)
    if key not in _ALIGNERS:
        _ALIGNERS[key] = _open_aligner(ranged, preset)
    return _ALIGNERS[key]


def _open_aligner(ranged, preset: str):
    import mappy

    path = ranged.path
    if not ranged.is_local:
        handle, path = tempfile.mkstemp(prefix="genoflow-", suffix=".mmi")
        with os.fdopen(handle, "wb") as local, ranged.open_stream() as source:
            shutil.copyfileobj(source, local, 1 << 20)
    aligner = mappy.Aligner(fn_idx_in=path, preset=preset)
    if not ranged.is_local:
        os.unlink(path)  # mappy has loaded it into memory
    if not aligner:
        raise InputError(ranged.uri, "cannot load this minimap2 index")
    return aligner
