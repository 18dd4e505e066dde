"""What ``slam units`` reads: :class:`~slamlm.corpora.AudioItem` s from any corpus container
(folder, glob, manifest, path list, LibriSpeech, HF dataset, parquet, tar shards, lhotse).

Ids are stable (relative path without extension, the manifest's/table's id, the tar key, the
lhotse cut id) and must be unique; a clash names both sources. See ``slamlm.corpora.detect``.

Example:
    >>> # [(it.id, it.path) for it in list_inputs("data/audio")]
    >>> # [("spk1/utt1", "data/audio/spk1/utt1.flac"), ...]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slamlm.corpora import AudioItem, list_items


def list_inputs(spec: str | Path, **options: Any) -> list[AudioItem]:
    """Items of ``spec``; ``options``: input_format, split, audio_column, text_column, id_column."""
    return list_items(spec, **options)


def input_options(cfg: Any) -> dict[str, Any]:
    """The container options of a units/fit config, as :func:`list_inputs` takes them."""
    return {k: getattr(cfg, k, None) for k in ("input_format", "split", "audio_column",
                                               "text_column", "id_column")}
