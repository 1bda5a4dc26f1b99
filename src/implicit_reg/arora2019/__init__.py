"""Arora, Cohen, Hu & Luo (2019): deep matrix factorization engine, data, convex baseline, plan, tables."""
