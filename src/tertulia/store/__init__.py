"""Persistence: SQLAlchemy tables, sessions and migrations."""
