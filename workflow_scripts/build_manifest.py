"""Rule `manifest`: one validated utterance table per split, plus its rejects table (maybe header-only).

With `data.on_bad_utterance: fail`, build_manifest raises listing every offender and nothing is written.
"""

import sys

from omni.atomic import write_dataframe
from omni.data.corpus import read_corpus_record
from omni.data.manifest import build_manifest, write_manifest
from omni.logs import tee_stderr

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    split = smk.wildcards.split
    corpus_info = read_corpus_record(smk.input.corpus)
    kept, rejects = build_manifest(corpus_info, split, smk.params.data, workers=smk.threads)
    write_dataframe(smk.output.rejects, rejects)
    write_manifest(smk.output.manifest, kept, smk.input.corpus)
    print(
        f"split {split}: kept {len(kept)} utterances ({kept['duration_s'].sum() / 3600:.2f} h),"
        f" rejected {len(rejects)}",
        file=sys.stderr,
    )
