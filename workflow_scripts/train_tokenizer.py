"""Rule `tokenizer`: sentencepiece model trained on the training transcripts."""
from omni.logs import tee_stderr
from omni.data.manifest import read_manifest
from omni.data.tokenizer import train_tokenizer

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    tokenizer_cfg = smk.config["tokenizer"]
    train_tokenizer(list(read_manifest(smk.input.manifest)["transcript"]), tokenizer_cfg["vocab_size"],
                    tokenizer_cfg["model_type"], smk.output.model, seed=smk.config["seed"])
