"""gaitstream bridge (see README)."""
