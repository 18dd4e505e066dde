"""``slam vocoder``: train (default) a unit-to-speech vocoder on a units folder.

Example:
    $ slam vocoder train --units run/units --out run/vocoder --schedule.budget 30m
    $ slam vocoder train --units run/units --out run/voc_hg --arch hifigan --gan true
    $ slam generate ... --vocoder hifigan:run/vocoder
    $ slam vocoder train --units run/units --out run/voc_spk --speaker-embedding resemblyzer
    $ slam generate ... --vocoder hifigan:run/voc_spk --speaker-wav voice.wav
"""

from __future__ import annotations

from slamlm.cli_adapter import Command

COMMAND = Command("vocoder", "unit-to-speech vocoder (train)", description=__doc__,
                  default="train", subcommands=(
    Command("train", "train a unit vocoder (istft or textlesslib HiFi-GAN) on units + audio",
            config="slamlm.vocoder.runner:VocoderConfig", run="slamlm.vocoder.runner:run_vocoder",
            flags={"--budget": "schedule.budget", "--max-steps": "schedule.max_steps"}),
))
