"""Run outputs: run folder + metrics log, evaluation, summaries, plots, console progress."""
