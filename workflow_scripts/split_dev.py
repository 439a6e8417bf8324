"""Rule split_dev: the dev manifest split by speaker into the search's part and the reported part."""

import sys

from omni.data.dev_split import split_by_speaker, split_units
from omni.data.manifest import manifest_corpus_record, read_manifest, write_manifest
from omni.logs import tee_stderr

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    settings = smk.params.dev_split
    dev = read_manifest(smk.input.manifest)
    search, report = split_by_speaker(dev, settings["search_fraction"], settings["seed"])
    corpus_record = manifest_corpus_record(smk.input.manifest)
    write_manifest(smk.output.search, search, corpus_record)
    write_manifest(smk.output.report, report, corpus_record)
    unit = split_units(dev)[1]
    named = "" if unit == "speaker" else " (the manifest names no speaker for some: the parts may share a talker)"
    print(
        f"dev split by {unit}{named}: {len(search)} utterances for the search, {len(report)} reported", file=sys.stderr
    )
