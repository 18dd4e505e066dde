"""Synthetic speech: stories, TTS (espeak-ng), corpora, benchmarks, preference triplets."""
