"""Label-noise audits of a dataset's labels from its cached embeddings (tuner.audit)."""
