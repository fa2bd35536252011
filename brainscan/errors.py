"""Exceptions whose message is one sentence for a user (kept free of heavy imports)."""


class ModelError(RuntimeError):
    """A model that cannot be found, loaded or built; the message says what to do."""
