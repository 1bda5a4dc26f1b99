"""The published numbers against ours: reading, tolerance, instance spread, verdict, rows, the report's text."""
