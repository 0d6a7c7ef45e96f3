"""Capture-specification profiles (YAML), loaded by config.capture."""
