"""Rule `feature_stats`: global log-mel mean/std over the training manifest."""

from omni.atomic import write_json
from omni.data.features import compute_feature_stats
from omni.data.manifest import read_manifest
from omni.logs import tee_stderr
from omni.runtime import set_threads

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    set_threads(1)  # the rule's threads are spent as that many worker threads, one core each
    stats = compute_feature_stats(read_manifest(smk.input.manifest), smk.params.logmel, workers=smk.threads)
    write_json(smk.output.stats, stats)
