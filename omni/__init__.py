"""Omni-sparsity study library: data, model, sparsity, supernet, evaluation, reporting.

Never imports snakemake, so every piece is callable from tests and notebooks.
"""
