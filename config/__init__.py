"""Settings, recipe presets and the software identity recorded in every provenance event."""
