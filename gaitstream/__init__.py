"""gaitstream: foot-sensor gait recordings to a Parkinson's screening signal, as a stream."""

__version__ = "0.1.0"
