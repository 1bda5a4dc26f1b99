"""Razin & Cohen (2020): 2x2 engine, CP tensor completion, CP rank, plan, tables."""
