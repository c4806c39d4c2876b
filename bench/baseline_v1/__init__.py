"""The previous streaming core (feature version 1, state = every sample of the walk), kept verbatim
from commit 9f0b9fe so the benchmarks print today's numbers beside it in the same run.
Not imported by the product."""
