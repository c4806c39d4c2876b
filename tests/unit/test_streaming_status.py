"""The status file's view of Spark's progress: state operators renamed, absent ones an empty list."""

from streaming import status


def test_state_operators_are_renamed_and_a_stateless_query_has_none():
    progress = {
        "stateOperators": [
            {
                "operatorName": "dedupeWithinWatermark",
                "numRowsTotal": 960_000,
                "numRowsUpdated": 16_000,
                "numRowsRemoved": 15_900,
                "memoryUsedBytes": 123,
                "allUpdatesTimeMs": 40,
                "allRemovalsTimeMs": 900,
                "commitTimeMs": 30,
                "customMetrics": {"rocksdbBytesCopied": 1},
            }
        ]
    }
    assert status.state_operators(progress) == [
        {
            "operator": "dedupeWithinWatermark",
            "rows_total": 960_000,
            "rows_updated": 16_000,
            "rows_removed": 15_900,
            "memory_used_bytes": 123,
            "updates_ms": 40,
            "removals_ms": 900,
            "commit_ms": 30,
        }
    ]
    assert status.state_operators({}) == []
    assert status.state_operators({"stateOperators": None}) == []
