"""Rebuild the shipped artifacts: the data subsets and the trained checkpoints under data/."""
