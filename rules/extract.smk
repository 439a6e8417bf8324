# Stage 4: fine-tune-free extraction of each sparsity from the supernet, and the compact export
# (what a device would load) of every model the study evaluates.


rule extract_omni:
    """Masks from the final supernet weights, made permanent; no optimizer step runs."""
    input:
        supernet=rules.train_omni.output.model,
    output:
        model=f"{R}/models/omni/s{{sparsity}}/model.pt",
        cost=f"{R}/models/omni/s{{sparsity}}/cost.json",
    params:
        settings=settings("sparsity"),
    log:
        f"{R}/logs/extract_omni/s{{sparsity}}.log",
    benchmark:
        f"{R}/benchmarks/extract_omni/s{{sparsity}}.tsv"
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/extract_omni.py"


rule export_model:
    """Compact export (kept values + positions), fp32 and fp16, with its size accounting."""
    input:
        model=f"{R}/models/{{arm}}/{{tag}}/model.pt",
    output:
        fp32=f"{R}/models/{{arm}}/{{tag}}/export_fp32.pt",
        fp16=f"{R}/models/{{arm}}/{{tag}}/export_fp16.pt",
        info=f"{R}/models/{{arm}}/{{tag}}/export.json",
    params:
        settings=settings("sparsity"),
    log:
        f"{R}/logs/export_model/{{arm}}/{{tag}}.log",
    benchmark:
        f"{R}/benchmarks/export_model/{{arm}}/{{tag}}.tsv"
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/export_model.py"


MODELS.extend(("omni", f"s{level}") for level in LEVELS)
COST_RECORDS.extend(f"{R}/models/omni/s{level}/cost.json" for level in LEVELS)
