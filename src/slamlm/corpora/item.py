"""The one record every corpus reader yields: an id, where its audio is, optional text.

Example:
    >>> it = AudioItem("103/1240/103-1240-0000", "data/103-1240-0000.flac",
    ...                path="data/103-1240-0000.flac", text="CHAPTER ONE")
    >>> it.kind
    'file'
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from slamlm.io import ManifestError


class CorpusError(ManifestError):
    """A container that cannot be read as given; the message names it and the fix."""


@dataclass(frozen=True)
class AudioItem:
    """One utterance: cheap to hold (no samples); :func:`slamlm.corpora.decode.load_item`
    decodes it when needed."""

    id: str                            # stable, unique over the whole input
    source: str                        # where it is, for records and failures ("a.parquet row 3")
    path: str | None = None            # audio file on disk (folders, manifests, lhotse)
    offset: float = 0.0                # seconds into ``path`` (a lhotse cut)
    duration: float | None = None      # seconds from ``offset``; None: to the end
    ref: tuple[Any, ...] | None = None  # a row/member in a container: ("tar", file, start, size),
    #                                    ("parquet", file, row, column), ("hf", folder, split, row, column)
    data: bytes | None = None          # encoded audio held in memory
    text: str | None = None            # transcript, when the container has one

    @property
    def kind(self) -> str:
        """``file`` | ``span`` | ``bytes`` | the container kind of ``ref``."""
        if self.ref is not None:
            return str(self.ref[0])
        if self.data is not None:
            return "bytes"
        return "span" if (self.offset or self.duration is not None) else "file"


def need(module: str, what: str) -> Any:
    """Import an optional library or fail with the install line.

    Example:
        >>> need("json", "JSON").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{what} needs the '{module.split('.')[0]}' package: "
                          f"pip install 'slamlm[corpora]'") from e
