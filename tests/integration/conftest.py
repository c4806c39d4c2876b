"""Fixtures shared by integration test modules."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def spark_reader():
    """A plain local Spark session to read the Parquet archive back (as any consumer would)."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("archive-reader")
        .config("spark.ui.enabled", False)
        .getOrCreate()
    )
    yield session
    session.stop()
