"""Shared core of both papers: metrics, checkpoints, seeds, hashes, TeX text, table I/O."""
