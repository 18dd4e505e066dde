"""Speech corpora in their usual containers, read as one stream of :class:`AudioItem`.

Folders/globs, JSONL manifests, path lists, LibriSpeech transcripts, Hugging Face datasets
saved to disk, parquet with an ``Audio`` column, WebDataset tar shards and lhotse manifests
(``detect.py`` has the table); plus units tables written/read as JSONL, parquet or a saved
Hugging Face dataset (``records.py``). Audio is never decoded at listing time.

Layer 1½: imports only layer 1 (``audio``, ``io``); ``units`` and ``synth`` build on it.
The optional libraries (datasets, pyarrow, lhotse, braceexpand) come with
``pip install 'slamlm[corpora]'``.

Example:
    >>> from slamlm.corpora import list_items
    >>> # items = list_items("shards/{000..009}.tar"); load_item(items[0])
"""

from slamlm.corpora.decode import load_item, probe_item
from slamlm.corpora.detect import FORMATS, detect_format, list_items, list_texts
from slamlm.corpora.item import AudioItem, CorpusError

__all__ = ["FORMATS", "AudioItem", "CorpusError", "detect_format", "list_items", "list_texts",
           "load_item", "probe_item"]
