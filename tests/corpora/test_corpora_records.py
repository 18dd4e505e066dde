"""Units as parquet / a saved HF dataset: same records as JSONL, read by every units reader."""

from __future__ import annotations

import pytest
import soundfile as sf
from corpora_helpers import CLIPS, TEXTS

pytest.importorskip("pyarrow")
pytest.importorskip("datasets")

from slamlm.corpora.records import read_records, write_records  # noqa: E402
from slamlm.data.pack import PackConfig, run_pack  # noqa: E402
from slamlm.data.shards import read_index  # noqa: E402
from slamlm.units.runner import UnitsConfig, read_units, run_units, units_files  # noqa: E402


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    d = tmp_path_factory.mktemp("m")
    lines = []
    for k, x in CLIPS.items():
        sf.write(d / f"{k}.flac", x, 16000, subtype="PCM_16")
        lines.append(f'{{"path": "{k}.flac", "text": "{TEXTS[k]}"}}' if k != "utt-c"
                     else f'{{"path": "{k}.flac"}}')
    (d / "m.jsonl").write_text("\n".join(lines) + "\n")
    return d / "m.jsonl"


@pytest.mark.parametrize("fmt", ["parquet", "hf"])
def test_units_table_round_trip_equals_jsonl(tmp_path, manifest, kmeans8, fmt):
    run = {}
    for f in ("jsonl", fmt):
        out = tmp_path / f
        run_units(UnitsConfig(input=str(manifest), out=str(out), kmeans=str(kmeans8),
                              num_workers=0, device="cpu", format=f))
        run[f] = sorted(read_units(out), key=lambda r: r["id"])
    assert [p.name for p in units_files(tmp_path / fmt)] == [f"units.{fmt}"]
    assert not (tmp_path / fmt / "units.jsonl").exists()
    assert run[fmt] == run["jsonl"]  # same columns, same values; 'text' only where present
    assert "text" not in run[fmt][2] and run[fmt][0]["text"] == TEXTS["utt-a"]
    # resume: a re-run adds nothing and keeps the table
    run_units(UnitsConfig(input=str(manifest), out=str(tmp_path / fmt), kmeans=str(kmeans8),
                          num_workers=0, device="cpu", format=fmt))
    assert sorted(read_units(tmp_path / fmt), key=lambda r: r["id"]) == run["jsonl"]
    # slam pack reads the table as it reads JSONL
    idx = {f: read_index(run_pack(PackConfig(units=tmp_path / f, out=tmp_path / f"tok-{f}",
                                             n_units=8, val_fraction=0.0)))
           for f in ("jsonl", fmt)}
    assert idx[fmt]["splits"] == idx["jsonl"]["splits"]


def test_parquet_resume_adds_only_new_records(tmp_path, manifest, kmeans8):
    out = tmp_path / "o"
    part = tmp_path / "part.jsonl"
    part.write_text(manifest.read_text().splitlines()[0].replace('"utt-a', f'"{manifest.parent}/utt-a')
                    + "\n")
    run_units(UnitsConfig(input=str(part), out=str(out), kmeans=str(kmeans8), num_workers=0,
                          device="cpu", format="parquet"))
    assert [r["id"] for r in read_units(out)] == ["utt-a"]
    run_units(UnitsConfig(input=str(manifest), out=str(out), kmeans=str(kmeans8), num_workers=0,
                          device="cpu", format="parquet"))
    assert sorted(r["id"] for r in read_units(out)) == sorted(CLIPS)


def test_write_records_is_atomic_and_rejects_nothing(tmp_path):
    write_records(tmp_path / "u.parquet", [{"id": "a", "units": [1, 2]}])
    with pytest.raises(Exception, match="no records"):
        write_records(tmp_path / "u.parquet", [])
    assert list(read_records(tmp_path / "u.parquet")) == [{"id": "a", "units": [1, 2]}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u.parquet"]  # no temp left


def test_cli_tar_shards_to_parquet(tmp_path, kmeans8):
    from test_corpora_tars import write_shards

    from slamlm.cli import _default_subcommand, build_parser

    write_shards(tmp_path / "sh")
    argv = _default_subcommand(["units", "extract", str(tmp_path / "sh" / "train-{000..001}.tar"),
                                "--out", str(tmp_path / "u"), "--kmeans", str(kmeans8),
                                "--format", "parquet", "--input-format", "webdataset",
                                "--num-workers", "0", "--device", "cpu"])
    args = build_parser(argv).parse_args(argv)
    assert args.func(args) == 0
    assert (tmp_path / "u" / "units.parquet").is_file()
    assert sorted(r["id"] for r in read_units(tmp_path / "u")) == sorted(CLIPS)
    with pytest.raises(ValueError, match="--format 'csv': choose one of jsonl, parquet, hf"):
        run_units(UnitsConfig(input=str(tmp_path / "sh"), out=str(tmp_path / "v"), format="csv"))


@pytest.mark.parametrize("fmt", ["parquet", "hf"])
def test_shortcut_control_shuffles_table_units(tmp_path, fmt):
    from slamlm.eval.shortcut import shuffle_units_dir

    src = tmp_path / "u"
    recs = [{"id": f"r{i}", "units": list(range(i, i + 40)), "durations": [1] * 40}
            for i in range(5)]
    write_records(src / f"units.{fmt}", recs)
    dst = shuffle_units_dir(src, tmp_path / "shuf", seed=1)
    out = sorted(read_units(dst), key=lambda r: r["id"])
    assert [r["id"] for r in out] == [r["id"] for r in recs]
    assert all(sorted(o["units"]) == r["units"] and o["units"] != r["units"]
               for o, r in zip(out, recs))  # shuffled, not copied
