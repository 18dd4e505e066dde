"""Read the centroids of a textlesslib/TWIST k-means ``.bin`` without running code from it.

Those files are scikit-learn ``KMeans``/``MiniBatchKMeans`` objects written by ``joblib.dump``
(joblib's format: a pickle whose numpy arrays are ``NumpyArrayWrapper`` records followed by
the raw array bytes; optionally zlib/gzip/bz2/xz/lzma compressed) or by ``pickle.dump``.
``joblib.load``/``pickle.load`` would import and call whatever the file names, so a shared
``.bin`` could run any code (issue #16). Here a restricted unpickler admits only:

- numpy array and scalar reconstruction (``ndarray``, ``dtype``, ``_reconstruct``,
  ``scalar``, ``_frombuffer``) and joblib's ``NumpyArrayWrapper`` (read here, not by joblib);
- scikit-learn's ``KMeans``/``MiniBatchKMeans`` and numpy random states, as *inert stand-ins*
  that only record their state (no scikit-learn code runs, and it need not be installed);
- the few helpers plain pickles of those use (``copyreg._reconstructor`` onto a stand-in,
  ``_codecs.encode`` to latin-1, ``set``/``frozenset``/``complex``/``slice``).

Anything else is refused with :class:`UnsafePickleError` naming the file and the global.

Example:
    >>> centres = load_kmeans_centres("mhubert_base_25hz_cp_mls_cv_sp_fisher_L11_km500.bin")  # doctest: +SKIP
    >>> centres.shape                                                                       # doctest: +SKIP
    (500, 768)
"""

from __future__ import annotations

import _compat_pickle
import bz2
import importlib
import io
import lzma
import pickle
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

MAX_BYTES = 1 << 31  # decompressed size limit (a 500 x 768 k-means is ~2 MB)
SKLEARN_CLASSES = ("KMeans", "MiniBatchKMeans")
_DECOMPRESSORS: tuple[tuple[bytes, str, Callable[[], Any]], ...] = (
    (b"\x1f\x8b", "gzip", lambda: zlib.decompressobj(wbits=31)),
    (b"BZh", "bz2", bz2.BZ2Decompressor),
    (b"\xfd7zXZ", "xz", lzma.LZMADecompressor),
    (b"]\x00\x00", "lzma", lambda: lzma.LZMADecompressor(format=lzma.FORMAT_ALONE)),
    (b"\x78", "zlib", zlib.decompressobj),  # joblib's compress=True / 1..9 default
)
_REFUSED_FORMATS = {b"\x04\x22\x4d\x18": "lz4-compressed (re-save it with compress=3 or none)",
                    b"ZF": "joblib < 0.10 compressed (re-save it with a current joblib)"}


class UnsafePickleError(ValueError):
    """A pickle asked for something a k-means file does not need."""


class _Inert:
    """Stand-in for an admitted class: records constructor args and state, runs nothing."""

    qualname = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> _Inert:
        obj = object.__new__(cls)
        obj.args, obj.state = args, None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _ArrayWrapper(_Inert):
    """joblib's ``NumpyArrayWrapper``: shape/dtype/order of the array bytes that follow it."""

    qualname = "joblib.numpy_pickle.NumpyArrayWrapper"


_STANDINS: dict[str, type[_Inert]] = {}


def _standin(qualname: str) -> type[_Inert]:
    if qualname not in _STANDINS:
        _STANDINS[qualname] = type(qualname.rsplit(".", 1)[-1], (_Inert,), {"qualname": qualname})
    return _STANDINS[qualname]


def _numpy_attr(sub: str, name: str) -> Any:
    """``numpy._core.<sub>.<name>`` (numpy 2) or ``numpy.core.<sub>.<name>`` (numpy 1)."""
    for mod in (f"numpy._core.{sub}", f"numpy.core.{sub}"):
        try:
            return getattr(importlib.import_module(mod), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy has no {sub}.{name}")


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes (latin-1 only)."""
    if encoding.lower().replace("-", "") != "latin1":
        raise UnsafePickleError(f"_codecs.encode with encoding {encoding!r} (only latin1 is admitted)")
    return text.encode("latin1")


def _reconstructor(cls: Any, base: Any, state: Any) -> _Inert:
    """``copyreg._reconstructor`` restricted to building a stand-in on ``object``."""
    if not (isinstance(cls, type) and issubclass(cls, _Inert)) or base is not object or state is not None:
        raise UnsafePickleError(f"copyreg._reconstructor({cls!r}, {base!r}) (only admitted classes)")
    return cls.__new__(cls)


def _admitted(module: str, name: str) -> Any:
    """The object a pickle may use for ``module.name``, or None when refused."""
    if module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray") and name in (
            "ndarray", "dtype"):
        return getattr(np, name)
    for sub, names in (("multiarray", ("_reconstruct", "scalar")), ("numeric", ("_frombuffer",))):
        if module in (f"numpy.core.{sub}", f"numpy._core.{sub}") and name in names:
            return _numpy_attr(sub, name)
    if module.split(".")[:2] == ["sklearn", "cluster"] and name in SKLEARN_CLASSES:
        return _standin(f"{module}.{name}")
    if module.startswith("numpy.random"):  # a fitted estimator's random_state: keep it inert
        return _standin(f"{module}.{name}")
    if name == "NumpyArrayWrapper" and module.endswith("joblib.numpy_pickle"):
        return _ArrayWrapper
    if module == "copyreg" and name == "_reconstructor":
        return _reconstructor
    if module == "_codecs" and name == "encode":
        return _latin1_encode
    if module == "builtins" and name in ("object", "set", "frozenset", "complex", "slice"):
        return getattr(__import__("builtins"), name)
    return None


class RestrictedUnpickler(pickle._Unpickler):  # the Python one: its BUILD can be extended
    """Unpickler that admits only :func:`_admitted` globals and reads joblib's array records."""

    dispatch = pickle._Unpickler.dispatch.copy()

    def __init__(self, fh: io.BufferedIOBase, path: str | Path):
        super().__init__(fh)
        self._fh, self.path = fh, str(path)

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3:  # Python 2 names (__builtin__, copy_reg) as pickle maps them
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        obj = _admitted(module, name)
        if obj is None:
            raise UnsafePickleError(
                f"{self.path}: refused global {module}.{name}: a k-means file needs only numpy "
                f"arrays and scikit-learn KMeans/MiniBatchKMeans, so this file is not loaded "
                f"(it would run code under joblib.load/pickle.load; do not open it that way)")
        return obj

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.path}: refused persistent id {pid!r}")

    def load_build(self) -> None:
        super().load_build()
        if isinstance(self.stack[-1], _ArrayWrapper):
            self.stack[-1] = self._read_array(self.stack[-1].state or {})

    dispatch[pickle.BUILD[0]] = load_build

    def _read_array(self, meta: dict[str, Any]) -> np.ndarray:
        """The array bytes after a ``NumpyArrayWrapper`` (as joblib writes them)."""
        dtype, shape = meta.get("dtype"), tuple(int(s) for s in meta.get("shape", ()))
        if not isinstance(dtype, np.dtype) or meta.get("subclass") not in (np.ndarray, None):
            raise UnsafePickleError(f"{self.path}: array record with dtype {dtype!r}, "
                                    f"class {meta.get('subclass')!r} (only plain ndarrays)")
        if dtype.hasobject:  # objects are a nested pickle: same restrictions
            return RestrictedUnpickler(self._fh, self.path).load()
        if meta.get("numpy_array_alignment_bytes") is not None:  # joblib >= 1.2 pads
            self._fh.read(int.from_bytes(self._fh.read(1), "little"))
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        data = self._fh.read(size)
        if len(data) != size:
            raise ValueError(f"{self.path}: truncated (array of {size} bytes, {len(data)} left)")
        arr = np.frombuffer(data, dtype=dtype).copy()
        arr = arr.reshape(shape[::-1]).T if meta.get("order") == "F" else arr.reshape(shape)
        return arr.astype(dtype.newbyteorder("="), copy=False)


def _decompress(raw: bytes, path: str | Path) -> bytes:
    """Undo joblib's compression (detected by its magic prefix, as joblib does)."""
    for magic, what in _REFUSED_FORMATS.items():
        if raw.startswith(magic):
            raise ValueError(f"{path}: {what}")
    for magic, what, make in _DECOMPRESSORS:
        if raw.startswith(magic):
            dec = make()
            try:
                out = dec.decompress(raw, MAX_BYTES)
            except (zlib.error, OSError, lzma.LZMAError, EOFError) as e:
                raise ValueError(f"{path}: corrupt {what} data ({e})") from e
            if len(out) >= MAX_BYTES:
                raise ValueError(f"{path}: decompresses past {MAX_BYTES >> 20} MiB; not a k-means")
            return out
    return raw


def load_pickle_restricted(path: str | Path) -> Any:
    """Unpickle a (joblib or plain, maybe compressed) file admitting only k-means contents."""
    data = _decompress(Path(path).read_bytes(), path)
    try:
        return RestrictedUnpickler(io.BytesIO(data), path).load()
    except UnsafePickleError:
        raise
    except Exception as e:
        raise ValueError(f"{path}: not a joblib/pickle k-means file ({type(e).__name__}: {e}); "
                         f"expected .safetensors (slamlm) or a textlesslib/TWIST .bin") from e


def load_kmeans_centres(path: str | Path) -> np.ndarray:
    """``cluster_centers_`` (k, dim) float32 of a pickled scikit-learn k-means (or a bare array)."""
    obj = load_pickle_restricted(path)
    if isinstance(obj, np.ndarray):
        centres = obj
    elif isinstance(obj, _Inert) and isinstance(obj.state, dict):
        centres = obj.state.get("cluster_centers_")
    else:
        centres = None
    name = obj.qualname if isinstance(obj, _Inert) else type(obj).__name__
    if not isinstance(centres, np.ndarray) or centres.ndim != 2:
        raise ValueError(f"{path}: {name} has no 2-D cluster_centers_ (not a fitted "
                         f"scikit-learn KMeans)")
    return np.ascontiguousarray(centres, dtype=np.float32)
