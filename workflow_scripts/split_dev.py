"""Rule split_dev: the dev manifest split by speaker into the search's part and the reported part."""
import sys

from omni.atomic import write_dataframe
from omni.data.dev_split import split_by_speaker
from omni.data.manifest import read_manifest
from omni.logs import tee_stderr

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    settings = smk.params.dev_split
    search, report = split_by_speaker(read_manifest(smk.input.manifest), settings["search_fraction"], settings["seed"])
    write_dataframe(smk.output.search, search)
    write_dataframe(smk.output.report, report)
    print(f"dev split: {len(search)} utterances for the search, {len(report)} reported", file=sys.stderr)
