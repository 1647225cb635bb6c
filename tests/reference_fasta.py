"""A reference FASTA for tests: sequences written to a file and opened by index, as preprocess opens one."""

from __future__ import annotations

from pathlib import Path

from genoflow.io.reference import IndexedReference, open_reference
from genoflow.storage.ranged import RangedFile


def indexed_reference(folder: Path, sequences: dict[str, str], width: int = 60) -> IndexedReference:
    """Write ``sequences`` to ``folder/reference.fa`` (``width`` bases a line) and open it by index.

    The .fai is built in memory (no ``index_cache``), by the same streaming indexer preprocess uses."""
    path = Path(folder) / "reference.fa"
    path.write_text("".join(f">{name}\n" + "".join(seq[i:i + width] + "\n" for i in range(0, len(seq), width))
                            for name, seq in sequences.items()))
    return open_reference(RangedFile(str(path)))
