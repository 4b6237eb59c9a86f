"""Workflows: deterministic orchestration only (TEMPORAL_DETERMINISM).

Contract: no I/O, clocks or randomness; workflow files import contracts and temporalio, and import
activity classes only inside ``workflow.unsafe.imports_passed_through()`` for method references.

This package module imports nothing: the sandbox re-imports a workflow's module (and so this one)
for every run, and a run of one workflow should not pay for loading the others. The list of
workflows a worker registers is ``workflows.registry.WORKFLOWS``.
"""
