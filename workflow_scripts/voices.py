"""Rule `voices`: speaker -> voice of the corpus (empty for a corpus whose speakers are its voices)."""
import json

from omni.atomic import write_dataframe
from omni.data.voices import corpus_voices
from omni.logs import tee_stderr

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    root = json.loads(open(smk.input.corpus).read())["root"]
    write_dataframe(smk.output.voices, corpus_voices(root))
