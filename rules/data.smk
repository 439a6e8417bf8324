# Stage 1: data. corpus -> manifests (validated) -> dev split by speaker -> feature statistics -> tokenizer.

CORPUS_READY = f"{R}/corpus/{config['corpus']}.json"


localrules: split_dev, tokenizer, voices   # seconds each: on the submitting host


rule build_corpus:
    """Synthesise the embedded corpus, or index a local LibriSpeech tree or a corpus's own listings (no copy)."""
    input:
        listings=job_params.corpus_listings(config),
    output:
        info=CORPUS_READY,
    params:
        corpus=job_params.corpus(config),
        synth_tree=f"{R}/corpus/synth",
    log:
        f"{R}/logs/build_corpus.log",
    benchmark:
        STUDY.benchmark("build_corpus")
    threads: THREADS
    resources:
        **stage_resources("data"),
    script:
        "../workflow_scripts/build_corpus.py"


rule manifest:
    """One validated table per split; bad utterances fail the run or go to the rejects table."""
    input:
        corpus=CORPUS_READY,
    output:
        manifest=DATA["manifest"],
        rejects=f"{R}/data/rejects/{{split}}.tsv",
    params:
        data=job_params.manifest(config),
    log:
        f"{R}/logs/manifest/{{split}}.log",
    benchmark:
        STUDY.benchmark("manifest", "{split}")
    threads: THREADS  # threads probing audio headers
    resources:
        **stage_resources("data"),
    script:
        "../workflow_scripts/build_manifest.py"


rule split_dev:
    """dev split once by speaker (seeded): the search scores one part, the tables report the other."""
    input:
        manifest=STUDY.manifest("dev"),
    output:
        search=STUDY.manifest("dev-search"),
        report=STUDY.manifest("dev-report"),
    params:
        dev_split=job_params.dev_split(config),
    log:
        f"{R}/logs/split_dev.log",
    benchmark:
        STUDY.benchmark("split_dev")
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/split_dev.py"


rule feature_stats:
    """Global log-mel mean/std over the training split, for input normalisation."""
    input:
        manifest=DATA["train_manifest"],
    output:
        stats=DATA["feature_stats"],
    params:
        logmel=job_params.feature_stats(config),
    log:
        f"{R}/logs/feature_stats.log",
    benchmark:
        STUDY.benchmark("feature_stats")
    threads: THREADS
    resources:
        **stage_resources("data"),
    script:
        "../workflow_scripts/feature_stats.py"


rule tokenizer:
    """Sentencepiece model trained on the training transcripts."""
    input:
        manifest=DATA["train_manifest"],
    output:
        model=DATA["tokenizer"],
    params:
        tokenizer=job_params.tokenizer(config),
    log:
        f"{R}/logs/tokenizer.log",
    benchmark:
        STUDY.benchmark("tokenizer")
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/train_tokenizer.py"


rule voices:
    """Who speaks each utterance (the manifests), in which voice (the corpus's SPEAKERS.TXT): the tables resample voices."""
    input:
        corpus=CORPUS_READY,
        manifests=[STUDY.manifest(split) for split in SPLITS],
    output:
        voices=STUDY.voices(),
    log:
        f"{R}/logs/voices.log",
    benchmark:
        STUDY.benchmark("voices")
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/voices.py"
