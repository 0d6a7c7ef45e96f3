"""Alembic migrations of the catalog (packaged so `catalog.db.upgrade` finds them installed)."""
