"""The database layer: SQLAlchemy 2 models, Alembic migrations and every SQL statement.

Contract: only this package writes SQL. Repository functions take an ``AsyncSession`` and keyword
arguments, and only ``flush()``; the caller (an API route or an activity) owns the transaction.
"""
