"""runledger: the product's own packages and its composition roots.

Library packages (imported by the layers below the roots): ``contracts`` (identities, money rules,
payload dataclasses), ``config`` (settings), ``llm`` (the model gateway), ``tools`` (tool runner),
``graphs`` (the built-in LangGraph graphs), ``telemetry``. They live under ``runledger`` so that a
user's graph project with its own ``tools.py`` or ``config.py`` never shadows ours, nor ours theirs.

Composition roots: ``cli``, ``worker``, ``stack`` (the dev stack) and their helpers.
"""
