"""Keeping results: the archive of job outputs by provenance key, job records, run provenance."""
