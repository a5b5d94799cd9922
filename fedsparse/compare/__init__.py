"""Compare methods on one split and seed at equal upload budgets (`simulations.compare`)."""
