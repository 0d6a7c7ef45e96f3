"""Reading and writing files: decoding scans within limits, ingest facts, masters and access copies with embedded provenance (XMP), atomic writes, digests."""
