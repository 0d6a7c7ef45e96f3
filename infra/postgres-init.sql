-- A second database on the same server for the restorium catalog (Alembic creates its tables).
CREATE DATABASE restorium OWNER restorium;
