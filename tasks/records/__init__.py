"""Plain data every layer shares: scan jobs and outcomes, step records, keys and ids, an item's preservation record, and the failure vocabulary."""
