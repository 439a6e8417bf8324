"""Rule `build_corpus`: synthesise the embedded corpus or index a local LibriSpeech tree, then
write the info record (root + subset folders per split) that the manifest stage reads."""

import json
import sys
from pathlib import Path

from omni.data.corpus import prepare_corpus, write_corpus_record
from omni.logs import tee_stderr

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    info = prepare_corpus(smk.params.corpus, Path(smk.params.synth_tree), workers=smk.threads)
    write_corpus_record(smk.output.info, info)
    print(f"corpus ready: {json.dumps(info, sort_keys=True)}", file=sys.stderr)
