"""Reading corpus containers: listing cost and extraction speed, ours vs the obvious way.

1. Listing a parquet corpus (what ``slam units`` does before any audio is decoded):
   ours = ``list_items`` (reads only the id/text columns); baseline = ``pq.read_table(f)
   .to_pylist()`` (every row with its audio bytes in memory, how one-off scripts do it) and
   the same with every row decoded to float arrays (``datasets``' default for Audio columns).
   Each runs in a fresh process; its wall time and peak RSS (VmHWM) above what its imports
   took are reported.
2. ``slam units extract`` (mel encoder, CPU) on the same clips as plain FLAC files, as a
   parquet file, and as tar shards: units are checked identical, x real time side by side.

    python bench/corpora_containers.py              # 3000 rows of 1 s for 1., 200 clips for 2.

Prints two markdown tables.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

LIST_CODE = {  # (imports, timed code)
    "ours: list_items (id/text columns)": ("import datasets, pyarrow.parquet\nfrom slamlm.corpora import list_items", """
items = list_items(F)
n = len(items)"""),
    "baseline: read_table().to_pylist() (bytes)": ("import pyarrow.parquet as pq", """
rows = pq.read_table(F).to_pylist()
n = len(rows)"""),
    "baseline: rows decoded to arrays": ("import io, pyarrow.parquet as pq, soundfile as sf", """
rows = [dict(r, audio=sf.read(io.BytesIO(r["audio"]["bytes"]), dtype="float32")[0])
        for r in pq.read_table(F).to_pylist()]
n = len(rows)"""),
}


def peak_mb() -> str:
    """Code that reads this process's peak RSS (VmHWM: reset by exec, unlike ru_maxrss)."""
    return ("int(next(x for x in open('/proc/self/status') if x.startswith('VmHWM')).split()[1])"
            " / 1024")


def clip(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    x = 0.2 * np.sin(2 * np.pi * (120 + 3 * (seed % 50) + 80 * np.sin(3 * t)) * t)
    return (x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def flac(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, 16000, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def write_parquet(path: Path, clips: dict[str, np.ndarray]) -> None:
    import datasets

    ds = datasets.Dataset.from_dict({
        "id": list(clips), "audio": [{"bytes": flac(x), "path": None} for x in clips.values()],
        "text": [f"utterance {k}" for k in clips]}).cast_column("audio", datasets.Audio())
    ds.to_parquet(str(path))


def listing_table(tmp: Path, n: int) -> list[str]:
    f = tmp / "list.parquet"
    write_parquet(f, {f"u{i:06d}": clip(1.0, i) for i in range(n)})
    mb = f.stat().st_size / 2**20
    rows = [f"### listing {n} rows of 1 s ({mb:.0f} MB parquet)", "",
            "| method | rows | wall s (after imports) | peak RSS over imports, MB |",
            "|---|---:|---:|---:|"]
    for name, (imports, code) in LIST_CODE.items():
        prog = (f"import time, json\n{imports}\nF = {str(f)!r}\nbase = {peak_mb()}\n"
                f"t0 = time.perf_counter()\n{code}\n"
                f"print(json.dumps([n, time.perf_counter() - t0, {peak_mb()} - base]))")
        out = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                             env={"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
                                  "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                                  "PATH": "/usr/bin:/bin"}, check=True)
        k, wall, rss = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(f"| {name} | {k} | {wall:.2f} | {rss:.0f} |")
    return rows


def extract_table(tmp: Path, n: int) -> list[str]:
    from slamlm.units.fit import FitConfig, run_fit_kmeans
    from slamlm.units.runner import UnitsConfig, read_units, run_units

    clips = {f"c{i:04d}": clip(2.0 + (i % 5), i) for i in range(n)}
    (tmp / "plain").mkdir()
    for k, x in clips.items():
        sf.write(tmp / "plain" / f"{k}.flac", x, 16000, subtype="PCM_16")
    write_parquet(tmp / "c.parquet", clips)
    (tmp / "tars").mkdir()
    keys = list(clips)
    for s in range(4):
        with tarfile.open(tmp / "tars" / f"s-{s}.tar", "w") as tf:
            for k in keys[s::4]:
                data = flac(clips[k])
                info = tarfile.TarInfo(f"{k}.flac")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    km = run_fit_kmeans(FitConfig(input=str(tmp / "plain"), out=str(tmp / "km.safetensors"),
                                  k=50, n_init=1, device="cpu"))
    hours = sum(len(x) for x in clips.values()) / 16000 / 3600
    rows = [f"### slam units extract, mel, CPU, {n} clips ({hours * 60:.1f} audio-min)", "",
            "| input | records | wall s | x real time | units == plain files |",
            "|---|---:|---:|---:|---|"]
    ref = None
    for name, spec in [("plain FLAC folder (baseline)", tmp / "plain"),
                       ("parquet (Audio column)", tmp / "c.parquet"),
                       ("webdataset tar shards", str(tmp / "tars" / "s-{0..3}.tar"))]:
        out = tmp / f"out-{len(rows)}"
        t0 = time.perf_counter()
        run_units(UnitsConfig(input=str(spec), out=str(out), kmeans=str(km), device="cpu",
                              num_workers=1))
        wall = time.perf_counter() - t0
        recs = {r["id"]: r["units"] for r in read_units(out)}
        ref = ref or recs
        rows.append(f"| {name} | {len(recs)} | {wall:.1f} | {hours * 3600 / wall:.0f} | "
                    f"{recs == ref} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--clips", type=int, default=200)
    args = ap.parse_args()
    import logging

    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print("\n".join(listing_table(tmp, args.rows)) + "\n")
        print("\n".join(extract_table(tmp, args.clips)))


if __name__ == "__main__":
    main()
