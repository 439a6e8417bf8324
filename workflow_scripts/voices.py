"""Rule `voices`: utterance -> speaker and voice, from the split manifests and the corpus's SPEAKERS.TXT."""

from omni.atomic import write_dataframe
from omni.data.corpus import read_corpus_record
from omni.data.manifest import read_manifest
from omni.data.voices import utterance_voices
from omni.logs import tee_stderr

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    root = read_corpus_record(smk.input.corpus)["root"]
    write_dataframe(smk.output.voices, utterance_voices(map(read_manifest, smk.input.manifests), root))
