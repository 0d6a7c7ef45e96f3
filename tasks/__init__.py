"""The pipeline's stages as plain Python: arrays and typed parameters in, arrays and findings out.

No Prefect, no Ray, no database here (flows/ orchestrates, catalog/ persists, models/ infers).
"""
