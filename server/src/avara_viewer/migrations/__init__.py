"""Alembic migrations, shipped inside the package and run by `avara-viewer migrate`."""
