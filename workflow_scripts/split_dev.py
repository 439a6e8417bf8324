"""Rule split_dev: the dev manifest split by speaker into the search's part and the reported part."""
import sys

from omni.data.dev_split import split_by_speaker
from omni.data.manifest import manifest_corpus_record, read_manifest, write_manifest
from omni.logs import tee_stderr

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    settings = smk.params.dev_split
    search, report = split_by_speaker(read_manifest(smk.input.manifest), settings["search_fraction"], settings["seed"])
    corpus_record = manifest_corpus_record(smk.input.manifest)
    write_manifest(smk.output.search, search, corpus_record)
    write_manifest(smk.output.report, report, corpus_record)
    print(f"dev split: {len(search)} utterances for the search, {len(report)} reported", file=sys.stderr)
