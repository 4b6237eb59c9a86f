"""Shared, import-cheap types and pure functions.

Contract: this package imports only the standard library and ``temporalio.common``. Workflow code,
activities, the API and the database layer all depend on it; it depends on none of them.
"""
