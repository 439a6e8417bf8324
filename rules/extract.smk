# Stage 4: fine-tune-free extraction of each sparsity from the supernet, and the compact export
# (what a device would load) of every model the study evaluates.

localrules: extract_omni, export_model   # seconds each, no GPU: on the submitting host


rule extract_omni:
    """The masks the supernet last trained at this level, made permanent; no optimizer step runs."""
    input:
        supernet=rules.train_omni.output.model,  # of the same {arm} and {seed}
    output:
        model=f"{STUDY.model_dir('{arm}', '{seed}', 's{sparsity}')}/model.pt",
        cost=f"{STUDY.model_dir('{arm}', '{seed}', 's{sparsity}')}/cost.json",
    wildcard_constraints:
        arm=one_of(STUDY.omni_arms),
    log:
        f"{R}/logs/extract_omni/{{arm}}/{seed_dir('{seed}')}/s{{sparsity}}.log",
    benchmark:
        STUDY.benchmark(job_names.EXTRACT_OMNI, "{arm}", seed_dir("{seed}"), "s{sparsity}")
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/extract_omni.py"


rule export_model:
    """Compact export (kept values + positions), fp32 and fp16, with its size accounting."""
    input:
        model=f"{STUDY.model_dir('{arm}', '{seed}', '{tag}')}/model.pt",
    output:
        fp32=f"{STUDY.model_dir('{arm}', '{seed}', '{tag}')}/export_fp32.pt",
        fp16=f"{STUDY.model_dir('{arm}', '{seed}', '{tag}')}/export_fp16.pt",
        info=f"{STUDY.model_dir('{arm}', '{seed}', '{tag}')}/export.json",
    params:
        masks=of_arm(lambda arm: job_params.masks(config, arm)),
    log:
        f"{R}/logs/export_model/{{arm}}/{seed_dir('{seed}')}/{{tag}}.log",
    benchmark:
        STUDY.benchmark(job_names.EXPORT_MODEL, "{arm}", seed_dir("{seed}"), "{tag}")
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/export_model.py"
