"""Model versions as artifacts: bundles on storage, the release gate, the promotion hook."""
