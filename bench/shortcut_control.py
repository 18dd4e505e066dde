"""Shortcut control: does a model that cannot know any content still beat chance?

Writes a copy of a units folder with each document's units shuffled (content destroyed,
lengths and unit histogram kept; :mod:`slamlm.eval.shortcut`). Pretrain the same model on it
with the same settings, evaluate on the same benchmarks: every modelling benchmark should
come out at chance (95% interval holding 50%, ``learned: false``). A benchmark that a
shuffled-units model still "passes" can be won by unit frequencies or length, so the real
model's score there is no evidence of learning.

After a finished ``slam demo --out demo_run`` (same init, same pretraining settings: the
demo's resolved ``pretrain/config.yaml`` is reused, only the tokens and the output change):

    python bench/shortcut_control.py demo_run/units demo_run/control/units
    slam pack demo_run/control/units --out demo_run/control/tokens --n-units 160 \
        --context 256 --val-fraction 0.05                    # as the demo packs
    slam pretrain --config demo_run/pretrain/config.yaml \
        --tokens demo_run/control/tokens --out demo_run/control/pretrain
    slam eval $(ls -d demo_run/control/pretrain/ckpt/step_* | tail -1) \
        --out demo_run/control/eval --cache demo_run/eval/cache \
        --bench swuggy=demo_run/synth/bench/lexical --bench sblimp=demo_run/synth/bench/syntactic \
        --bench ssc=demo_run/synth/bench/sSC --bench tsc=demo_run/synth/bench/tSC \
        --bench salmon=demo_run/synth/bench/salmon
    python bench/shortcut_control.py --check demo_run/control/eval/results.json

(``slam <stage> --help`` lists the exact flag names; ``slam report demo_run`` then shows the
control's results beside the real ones.) ``--check`` prints one line per benchmark and exits
1 if any content benchmark is significantly off chance (its 95% interval excludes 50%).
SALMon is shown but not counted: its consistency pairs test whether the second half is
spoken like the first, which a unit histogram can tell when the units keep the voice.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

# benchmarks that test acoustics, not content: SALMon's consistency pairs ask whether the
# second half is spoken like the first, a property of the unit histogram itself, so a
# shuffled-units model may pass them (units that keep the voice); they are shown, not counted
ACOUSTIC = ("salmon",)


def check(results: Path) -> int:
    """Print the control's verdict per benchmark; 1 if a content benchmark is off chance."""
    body = json.loads(results.read_text()).get("benchmarks", {})
    bad = 0
    for name, d in body.items():
        ci, acc = d.get("ci95"), d.get("accuracy")
        off = bool(ci) and (ci[0] > 0.5 or ci[1] < 0.5)
        acoustic = d.get("kind", name) in ACOUSTIC
        bad += off and not acoustic
        span = f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "[n/a]"
        verdict = ("acoustic consistency: order-free by design, not counted" if acoustic else
                   "OFF CHANCE: a shortcut wins this benchmark" if off else "at chance (ok)")
        print(f"{name:<10} {100 * acc:5.1f}% {span:>14} over {d.get('n_keys')} items: {verdict}")
    return int(bad > 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", nargs="?", help="units folder (slam units output)")
    ap.add_argument("dst", nargs="?", help="where to write the shuffled copy")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", type=Path, default=None, help="results.json of the control model")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.check:
        sys.exit(check(args.check))
    if not (args.src and args.dst):
        ap.error("give SRC and DST units folders (or --check results.json)")
    from slamlm.eval.shortcut import shuffle_units_dir

    print(shuffle_units_dir(args.src, args.dst, args.seed))


if __name__ == "__main__":
    main()
