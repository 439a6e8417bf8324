"""Rule `build_corpus`: synthesise the embedded corpus or index a local LibriSpeech tree, then
write the info record (root + subset folders per split) that the manifest stage reads."""
import json
import sys

from omni.atomic import write_json
from omni.data.corpus import prepare_corpus
from omni.logs import tee_stderr

with tee_stderr(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    info = prepare_corpus(snakemake.config, workers=snakemake.threads)  # noqa: F821
    write_json(snakemake.output.info, info)  # noqa: F821
    print(f"corpus ready: {json.dumps(info, sort_keys=True)}", file=sys.stderr)
