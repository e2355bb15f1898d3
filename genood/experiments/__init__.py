"""The paper's experiments: TOML definitions, the pipeline that runs them, the claim verdicts."""
