"""efficiency: what an image classifier costs (params, FLOPs, latency) and what it buys (accuracy)."""
