"""gaitstream api (see README)."""
