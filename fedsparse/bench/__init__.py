"""The pruning-method bench: a grid of `fixed_mask` runs under federated splits (docs/pruning-bench.md).

`config` (the grid, `BenchConfig`), `grid` (cells and their run configs), `cell` (one run through
`fedsparse.runner.run_simulation`), `results` (the resumable CSV), `report` (heatmaps, summary),
`cli` (the entry), `autosparse` (the learned criterion's labels and scorer), `pretrain` (central
pre-training on data the clients do not hold).
"""
