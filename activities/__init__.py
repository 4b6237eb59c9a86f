"""Activities: the side-effect layer (database, model calls, graph execution).

Contract: activities are methods on classes whose dependencies come in through ``__init__``; the
worker builds them. They import contracts, db, graphs, llm and config — never workflows or api.
"""
