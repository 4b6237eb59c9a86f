"""``python -m runledger.cli``: the ``runledger`` command (how ``runledger up`` starts its worker and API)."""

from runledger.cli.app import main

if __name__ == "__main__":
    main()
