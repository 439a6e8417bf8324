"""Rule `manifest`: one validated utterance table per split, plus its rejects table (maybe header-only).

With `data.on_bad_utterance: fail`, build_manifest raises listing every offender and nothing is written.
"""
import json
import sys
from pathlib import Path

from omni.atomic import write_dataframe
from omni.data.manifest import build_manifest
from omni.logs import tee_stderr

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    split = smk.wildcards.split
    corpus_info = json.loads(Path(smk.input.corpus).read_text())
    kept, rejects = build_manifest(corpus_info, split, smk.params.data, workers=smk.threads)
    write_dataframe(smk.output.rejects, rejects)
    write_dataframe(smk.output.manifest, kept)
    print(f"split {split}: kept {len(kept)} utterances ({kept['duration_s'].sum() / 3600:.2f} h),"
          f" rejected {len(rejects)}", file=sys.stderr)
