"""The ``searchgate`` command."""
