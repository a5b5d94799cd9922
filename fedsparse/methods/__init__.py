"""The flwr-free side of each federated sparse method: its options, its pure rules and its client
step, one module per method (its server strategy is fedsparse/fl/strategies/<name>.py)."""
