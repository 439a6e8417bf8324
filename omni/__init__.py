"""Omni-sparsity study library, in the study's stages: `data` (corpus, manifests, features),
`asr` (the streaming RNN-T, its training loop and decoding), `sparsity` (masks, the individual
and omni arms, extraction, export, search), `results` (tables, figures, intervals, cost) and
`jobs` (what each rule runs). `job_params` and `study` say what each job reads from the
configuration and which jobs the study has.

Never imports snakemake, so every piece is callable from tests and notebooks.
"""
