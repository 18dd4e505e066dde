"""``slam vocoder``: train a unit-to-speech vocoder (unit HiFi-GAN or a light iSTFT model) on
(units, audio) pairs of a units folder; the result loads with ``--vocoder hifigan:<folder>``."""
