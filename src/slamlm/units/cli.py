"""``slam units``: extract (default), fit-kmeans, import-peer, export-peer.

Example:
    $ slam units extract data/audio --out run/units --encoder mel --k 500
    $ slam units data/audio --out run/units          # same: extract is the default
    $ slam units fit-kmeans data/audio --out km.safetensors --encoder hubert:slprl/mhubert-base-25hz
    $ slam units import-peer features.jsonl --out run/peer_units
    $ slam units export-peer run/units --out tokens.jsonl --format tokens
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from slamlm.cli import add_common_config_args

log = logging.getLogger(__name__)

SUBCOMMANDS = ("extract", "fit-kmeans", "import-peer", "export-peer")


class _DefaultExtract(argparse.ArgumentParser):
    """``slam units IN ...`` means ``slam units extract IN ...``."""

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if args and args[0] not in SUBCOMMANDS and args[0] not in ("-h", "--help"):
            args = ["extract", *args]
        return super().parse_known_args(args, namespace)


def _encoder_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="audio folder, glob, .jsonl manifest (path[, id]) or .txt of paths")
    p.add_argument("--out", required=True)
    p.add_argument("--encoder", help="mel (default) or hubert:<folder or hub id>")
    p.add_argument("--layer", type=int, help="HuBERT layer (default 11)")
    p.add_argument("--k", type=int, help="k-means clusters when fitting (default 500)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1")
    p.add_argument("--dtype", help="bf16 | fp16 | fp32 (default fp32; bf16 is faster on a GPU "
                   "but changes ~1%% of HuBERT units)")
    add_common_config_args(p)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("units", help="audio -> discrete units (extract, fit-kmeans, peer I/O)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.__class__ = _DefaultExtract
    sub = p.add_subparsers(dest="units_command", metavar="SUBCOMMAND",
                           parser_class=argparse.ArgumentParser)
    e = sub.add_parser("extract", help="units for every audio file (resumable)")
    _encoder_args(e)
    e.add_argument("--kmeans", help="k-means file (.safetensors or textlesslib .bin); "
                                    "default: fit one on the input and save it in --out")
    e.add_argument("--max-fit-frames", type=int, dest="max_fit_frames")
    e.add_argument("--batch-seconds", type=float, dest="batch_seconds")
    e.add_argument("--num-workers", type=int, dest="num_workers", help="decoding processes")
    e.add_argument("--shard", help="i/n: this job's share of the ids (default: torchrun RANK)")
    e.add_argument("--compress", action="store_true", default=None, help="gzip the shard at the end")
    e.add_argument("--strict", action="store_true", default=None, help="a bad file stops the run")
    e.set_defaults(func=_extract)
    f = sub.add_parser("fit-kmeans", help="fit a k-means on encoder frames of some audio")
    _encoder_args(f)
    f.add_argument("--max-frames", type=int, dest="max_frames")
    f.add_argument("--max-iter", type=int, dest="max_iter")
    f.set_defaults(func=_fit)
    i = sub.add_parser("import-peer", help="peer features.jsonl/tokens.jsonl -> units folder")
    i.add_argument("file")
    i.add_argument("--out", required=True)
    i.add_argument("--encoder", default="peer", help="encoder id to record (default: peer)")
    i.set_defaults(func=_import)
    x = sub.add_parser("export-peer", help="units folder -> peer features/tokens JSONL")
    x.add_argument("folder")
    x.add_argument("--out", required=True)
    x.add_argument("--format", choices=("features", "tokens"), default="features")
    x.set_defaults(func=_export)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _cfg(cls: type, args: argparse.Namespace, keys: tuple[str, ...]) -> Any:
    from slamlm.config import build_config

    base = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    return build_config(cls, base=base, overrides=args.overrides, config_file=args.config)


def _extract(args: argparse.Namespace) -> int:
    from slamlm.units.runner import UnitsConfig, run_units

    cfg = _cfg(UnitsConfig, args, ("input", "out", "encoder", "layer", "k", "seed", "device",
                                   "dtype", "kmeans", "max_fit_frames", "batch_seconds",
                                   "num_workers", "shard", "compress", "strict"))
    run_units(cfg)
    return 0


def _fit(args: argparse.Namespace) -> int:
    from slamlm.units.fit import FitConfig, run_fit_kmeans

    cfg = _cfg(FitConfig, args, ("input", "out", "encoder", "layer", "k", "seed", "device",
                                 "dtype", "max_frames", "max_iter"))
    print(run_fit_kmeans(cfg))
    return 0


def _import(args: argparse.Namespace) -> int:
    from slamlm.units.peer import import_peer

    import_peer(args.file, args.out, encoder=args.encoder)
    return 0


def _export(args: argparse.Namespace) -> int:
    from slamlm.units.peer import export_peer

    export_peer(args.folder, args.out, fmt=args.format)
    return 0
