"""Preservation records and packages: PREMIS, BagIt, fixity, people's decisions and reprocessing requests as events."""
