"""``slam units``: extract (default), merge, fit-kmeans, train-phones, import-peer, export-peer.

Example:
    $ slam units extract data/audio --out run/units --encoder mel --k 500
    $ slam units data/audio --out run/units          # same: extract is the default
    $ slam units sTinyStories/data --out run/units/sts --format parquet     # parquet, Audio column
    $ slam units my_ds --split train --audio-column speech --out run/units  # save_to_disk folder
    $ slam units "shards/train-{000..099}.tar" --out run/units             # WebDataset shards
    $ slam units cuts_dev-clean.jsonl.gz --out run/units                   # lhotse cuts
    $ slam units LibriSpeech/dev-clean --out run/units   # transcripts become each record's text
    $ slam units data/audio --out run/units --shard slurm   # in an sbatch --array=0-31 job
    $ slam units merge run/units                           # then: check + join the shards
    $ slam units fit-kmeans data/audio --out km.safetensors --encoder hubert:slprl/mhubert-base-25hz
    $ slam units train-phones synth/stories/manifest.jsonl --out run/phones  # espeak phones
    $ slam units synth/stories/manifest.jsonl --out run/units --encoder phones:run/phones
    $ slam units import-peer features.jsonl --out run/peer_units
    $ slam units export-peer run/units --out tokens.jsonl --format tokens
"""

from __future__ import annotations

from slamlm.cli_adapter import Command

COMMAND = Command("units", "audio -> discrete units (extract, fit-kmeans, peer I/O)",
                  description=__doc__, default="extract", subcommands=(
    Command("extract", "units for every audio file (resumable)",
            config="slamlm.units.runner:UnitsConfig", run="slamlm.units.runner:run_units",
            positional=("input",)),
    Command("merge", "check the shards of a sharded extraction and join them",
            config="slamlm.units.merge:MergeConfig", run="slamlm.units.merge:run_units_merge",
            positional=("folder",)),
    Command("fit-kmeans", "fit a k-means on encoder frames of some audio",
            config="slamlm.units.fit:FitConfig", run="slamlm.units.fit:run_fit_kmeans",
            positional=("input",)),
    Command("train-phones", "learn a phone-posterior encoder from a slam synth manifest",
            config="slamlm.units.phones:PhoneTrainConfig",
            run="slamlm.units.phones:train_phone_encoder", positional=("manifest",)),
    Command("import-peer", "peer features.jsonl/tokens.jsonl -> units folder",
            config="slamlm.units.peer:PeerImportConfig", run="slamlm.units.peer:run_import_peer",
            positional=("file",)),
    Command("export-peer", "units folder -> peer features/tokens JSONL",
            config="slamlm.units.peer:PeerExportConfig", run="slamlm.units.peer:run_export_peer",
            positional=("folder",)),
))
