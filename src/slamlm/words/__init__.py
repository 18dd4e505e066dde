"""Word alignments of real speech: forced alignment (pocketsphinx), readers of MFA TextGrids
and LibriSpeech alignment files, and the ``aligned_text`` JSONL that ``slam pack-interleaved
--alignments`` reads. ``slam align-words`` is the stage."""
