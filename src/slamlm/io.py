"""File helpers every stage uses: atomic writes, JSONL (optionally gzipped), failure logs.

Rules (DESIGN.md): outputs are written under a temporary name and renamed at the end, so a
file or folder that exists with its final name is complete; batch jobs record bad inputs in
``failures.jsonl`` and go on.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_jsonl(d / "a.jsonl", [{"id": "x", "units": [1, 2]}])
    PosixPath('...a.jsonl')
    >>> [r["id"] for r in read_jsonl(d / "a.jsonl")]
    ['x']
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO


class ManifestError(ValueError):
    """A JSONL/CSV input is malformed; the message names the file and line."""


class CutLineError(ManifestError):
    """The last line of a JSONL file is cut off (no newline, not valid JSON); ``line`` is its number."""

    def __init__(self, message: str, path: Path, line: int):
        super().__init__(message)
        self.path, self.line = path, line


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def file_sha1(path: str | Path) -> str:
    """sha1 (hex) of a file's content, read in 1 MiB blocks.

    Example:
        >>> # file_sha1("a.wav") -> 'f1d2d2f924e986ac86fdf7b36c94bcdf32beec15'
    """
    import hashlib

    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    """Flush a directory entry to disk (best effort; not all filesystems allow it)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file that appears at ``path`` only when the block ends without an error
    (temp file in the same folder, fsync, rename, folder fsync); on error nothing is left.

    Example:
        >>> # with atomic_file("out.bin") as f: f.write(b"...")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file + fsync + rename. Returns ``path``."""
    with atomic_file(path) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


@contextlib.contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yield a temp folder next to ``final``; on success rename it to ``final``.

    On an exception the temp folder is removed and ``final`` is untouched. An existing
    ``final`` is replaced only after the new one is complete.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        fsync_dir(final.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def open_text(path: str | Path, mode: str = "rt") -> io.TextIOBase:
    """Open plain or ``.gz`` text files transparently."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, mode, encoding="utf-8")  # type: ignore[return-value]
    return open(path, mode.replace("t", ""), encoding="utf-8")  # type: ignore[return-value]


@contextlib.contextmanager
def reading(path: str | Path, fix: str, error: type[Exception] | None = None) -> Iterator[None]:
    """Parse a user's ``path`` inside this block: any failure leaves it as ``error``
    (:class:`ManifestError` by default) naming the file, what went wrong and ``fix``.

    An error that already names the file (a ``ValueError`` or ``OSError`` of ours) passes
    unchanged; a library's own (``KeyError``, ``TypeError``, ``UnicodeDecodeError``,
    ``struct.error``, safetensors' or numpy's) never reaches the user bare.

    Example:
        >>> try:
        ...     with reading("x.json", "re-create it"):
        ...         {}["splits"]
        ... except ManifestError as e:
        ...     print(e)
        x.json: cannot be read (KeyError: 'splits'): re-create it
    """
    path = Path(path)
    try:
        yield
    except Exception as e:  # noqa: BLE001 - converted into a clear error below
        cls = error or ManifestError
        if isinstance(e, cls) and not isinstance(e, (UnicodeError, json.JSONDecodeError)):
            raise  # one of ours, already clear
        clear = (isinstance(e, (ValueError, OSError)) and not isinstance(e, UnicodeError)
                 and not isinstance(e, json.JSONDecodeError)
                 and (str(path) in str(e) or path.name in str(e)))
        if clear:
            raise
        raise cls(f"{path}: cannot be read ({type(e).__name__}: {str(e)[:200]}): {fix}") from e


def read_jsonl(path: str | Path, skip_bad: bool = False, cut_tail: str = "skip"
               ) -> Iterator[dict[str, Any]]:
    """Yield JSON objects from a ``.jsonl``/``.jsonl.gz`` file.

    A malformed line raises :class:`ManifestError` naming ``file line N`` (or is skipped when
    ``skip_bad``). A cut final line (no trailing newline, as a killed writer leaves) is, by
    ``cut_tail``: ``"skip"`` (files we append to and repair on resume), ``"warn"`` (skipped and
    logged) or ``"error"`` (a file the user gave: never silently dropped).
    """
    path = Path(path)
    if path.is_dir():
        raise ManifestError(f"{path}: is a folder, expected a .jsonl file")
    if not path.is_file():
        raise ManifestError(f"{path}: file does not exist")
    try:
        f = open_text(path)
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as e:
        raise ManifestError(f"{path}: cannot read ({e})") from e
    with f:  # streamed line by line: memory stays flat whatever the file size
        i = 0
        while True:
            try:
                line = f.readline()
            except (OSError, EOFError, UnicodeDecodeError, zlib.error) as e:
                raise ManifestError(f"{path}: cannot read ({e})") from e
            if not line:
                return
            i += 1
            cut = not line.endswith("\n")  # only the last line can lack its newline
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                if cut and cut_tail != "error":  # no trailing newline: a cut write
                    if cut_tail == "warn":
                        logging.getLogger(__name__).warning(
                            "%s line %d: cut-off last line (no newline, not valid JSON) skipped; "
                            "re-run the stage that wrote it to complete the file", path, i)
                    return
                if cut:
                    raise CutLineError(f"{path} line {i}: last line is cut off ({e.msg}): the "
                                       f"file is incomplete; re-export or re-copy it", path, i
                                       ) from e
                if skip_bad:
                    continue
                raise ManifestError(f"{path} line {i}: not valid JSON ({e.msg})") from e
            if not isinstance(obj, dict):
                if skip_bad:
                    continue
                raise ManifestError(f"{path} line {i}: expected a JSON object, got "
                                    f"{type(obj).__name__}")
            yield obj


def read_user_jsonl(path: str | Path, failures: FailureLog | None, fix: str
                    ) -> Iterator[dict[str, Any]]:
    """:func:`read_jsonl` of a file the user gave: a cut last line is never dropped silently.

    With ``failures`` it is a reported skip (one ``failures.jsonl`` record, id
    ``<file name>:line <N>``); without, a :class:`CutLineError` naming the file, the line and
    ``fix``. Every other malformed line is an error, as in :func:`read_jsonl`.
    """
    try:
        yield from read_jsonl(path, cut_tail="error")
    except CutLineError as e:
        reason = f"line {e.line}: last line is cut off (no newline, not valid JSON): {fix}"
        if failures is None:
            raise CutLineError(f"{e.path} {reason}", e.path, e.line) from e
        logging.getLogger(__name__).warning("%s %s; skipped, see %s", e.path, reason,
                                            failures.path)
        failures.add(f"{e.path.name}:line {e.line}", e.path, reason)


_GZ_OS = gzip.compress(b"", mtime=0)[9:10]


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> Path:
    """Write records atomically (gzipped when the name ends in ``.gz``), streamed: ``records``
    may be a generator and is never held in memory as a whole."""
    path = Path(path)
    with atomic_file(path) as raw:
        gz = (gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
              if path.suffix == ".gz" else None)
        out = gz or raw
        chunk: list[str] = []
        for r in records:
            chunk.append(json.dumps(r, ensure_ascii=False) + "\n")
            if len(chunk) == 1024:
                out.write("".join(chunk).encode("utf-8"))
                chunk = []
        out.write("".join(chunk).encode("utf-8"))
        if gz is not None:
            gz.close()
            raw.seek(9)  # the OS byte as gzip.compress writes it: same bytes as before
            raw.write(_GZ_OS)
    return path


class JsonlAppender:
    """Append records to a JSONL file, one flushed line each, for resumable jobs.

    Each record is written as one ``write`` of a full line followed by flush (and fsync every
    ``fsync_every`` records), so a kill leaves at most one partial last line, which
    :func:`read_jsonl` ignores and :meth:`repair` removes.
    """

    def __init__(self, path: str | Path, fsync_every: int = 64):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.repair(self.path)
        self._f = open(self.path, "a", encoding="utf-8")
        self._n = 0
        self.fsync_every = fsync_every

    @staticmethod
    def repair(path: Path) -> None:
        """Cut a partial last line left by a killed writer."""
        if not path.exists() or path.stat().st_size == 0:
            return
        with open(path, "rb+") as f:  # reads only the tail: O(1) per open, not O(file)
            end = f.seek(0, os.SEEK_END)
            f.seek(end - 1)
            if f.read(1) == b"\n":
                return
            pos = end
            while pos > 0:
                step = min(1 << 16, pos)
                f.seek(pos - step)
                k = f.read(step).rfind(b"\n")
                if k >= 0:
                    f.truncate(pos - step + k + 1)
                    return
                pos -= step
            f.truncate(0)

    def write(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._f.flush()
        self._n += 1
        if self._n % self.fsync_every == 0:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FailureLog:
    """Collects per-input failures into ``failures.jsonl`` (id, path, stage, reason).

    Example:
        >>> import tempfile, pathlib
        >>> log = FailureLog(pathlib.Path(tempfile.mkdtemp()) / "failures.jsonl", stage="units")
        >>> log.add("a/b", "a/b.wav", "empty audio file")
        >>> log.count
        1
    """

    def __init__(self, path: str | Path, stage: str, strict: bool = False):
        self.path = Path(path)
        self.stage = stage
        self.strict = strict
        self.count = 0
        self._seen: set[str] = set()
        if self.path.exists():
            for r in read_jsonl(self.path, skip_bad=True):
                self._seen.add(str(r.get("id")))

    def add(self, record_id: str, path: str | Path | None, reason: str) -> None:
        if self.strict:
            raise ValueError(f"{path or record_id}: {reason}")
        self.count += 1
        if record_id in self._seen:
            return
        self._seen.add(record_id)
        with JsonlAppender(self.path, fsync_every=1) as app:
            app.write({"id": record_id, "path": str(path) if path else None,
                       "stage": self.stage, "reason": reason})

    def known(self) -> set[str]:
        """Ids already recorded as failures (so a re-run does not retry them forever)."""
        return set(self._seen)
