"""Rule `tokenizer`: sentencepiece model trained on the training transcripts."""

from omni.data.manifest import read_manifest
from omni.data.tokenizer import train_tokenizer
from omni.logs import tee_stderr

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    settings = smk.params.tokenizer
    train_tokenizer(
        list(read_manifest(smk.input.manifest)["transcript"]),
        settings["vocab_size"],
        settings["model_type"],
        smk.output.model,
        seed=settings["seed"],
    )
