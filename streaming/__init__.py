"""gaitstream streaming (see README)."""
