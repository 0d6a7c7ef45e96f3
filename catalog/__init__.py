"""The provenance catalog: SQLAlchemy models, Alembic migrations and the repository API."""

from catalog.db import CatalogError
from catalog.repository import Catalog, IngestedOriginal, MasterInfo

__all__ = ["Catalog", "CatalogError", "IngestedOriginal", "MasterInfo"]
