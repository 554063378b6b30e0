"""Model versions and how they come to be: training runs, dataset snapshots, the promotion
gate, version comparison, per-class decision thresholds, artefacts."""
