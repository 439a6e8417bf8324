"""Rule `voices`: speaker -> voice of the corpus (empty for a corpus whose speakers are its voices)."""
from omni.atomic import write_dataframe
from omni.data.corpus import read_corpus_record
from omni.data.voices import corpus_voices
from omni.logs import tee_stderr

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    root = read_corpus_record(smk.input.corpus)["root"]
    write_dataframe(smk.output.voices, corpus_voices(root))
