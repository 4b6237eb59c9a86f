"""Process entry points and composition roots: the CLI, the worker and the embedded dev stack."""
