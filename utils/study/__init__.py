"""Tools that work on many runs: grids (utils.sweep), their backends, and reports (utils.report)."""
