"""``slam synth``: spoken stories, synthetic benchmarks, preference triplets.

Example:
    $ slam synth stories --n 1000 --voices en-us,en-us+f3 --out data/synth --workers 2
    $ slam synth stories --text my_stories.txt --out data/mine
    $ slam synth benchmarks --out data/bench --n 100
    $ slam synth stories --text builtin:es/stories.txt --voices es,es+f3 --out data/es
    $ slam synth benchmarks --voice es --pairs lexical=words.tsv --pairs syntactic=sents.tsv --out b
    $ slam synth preferences --n 500 --out data/prefs
"""

from __future__ import annotations

from slamlm.cli_adapter import Command

COMMAND = Command("synth", "synthetic speech: stories, benchmarks, preferences",
                  description=__doc__, subcommands=(
    Command("stories", "spoken story corpus (audio + manifest.jsonl)",
            config="slamlm.synth.corpus:SynthConfig", run="slamlm.synth.corpus:run_synth"),
    Command("benchmarks", "sWUGGY/sBLIMP/sSC/tSC/SALMon-like eval sets",
            config="slamlm.synth.benchmarks:BenchConfig",
            run="slamlm.synth.benchmarks:run_benchmarks"),
    Command("preferences", "SpokenSwag-like DPO triplets",
            config="slamlm.synth.preferences:PrefConfig",
            run="slamlm.synth.preferences:run_preferences"),
))
