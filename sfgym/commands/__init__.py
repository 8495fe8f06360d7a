"""Sub-commands of the ``sfgym`` command line (one module each, see :mod:`sfgym.cli`)."""
