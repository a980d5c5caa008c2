"""The ``traitlens`` command line."""
