"""The report's plots, one module per plot or plot group; each function draws from traces into one PNG."""
