"""Learned models: registry, weights, loading, tiled inference and the Ray actors that hold them."""
