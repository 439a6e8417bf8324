"""Rule diagnostics: every supernet level against its individual job (tables csv / md, figure png)."""

from pathlib import Path

from omni.data.voices import read_voices
from omni.logs import tee_stderr
from omni.results.diagnostics import LevelRun, write_diagnostics

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    runs = [
        LevelRun(
            **{
                key: Path(value) if isinstance(value, str) and key not in ("arm", "paired_individual") else value
                for key, value in run.items()
            }
        )
        for run in smk.params.runs
    ]
    write_diagnostics(
        runs, smk.params.decode, smk.params.split, read_voices(smk.input.voices), dict(smk.output.items())
    )
