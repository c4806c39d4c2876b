"""Labels from demographics.txt joined on subject_id: the only source of the PD/control label."""

from __future__ import annotations

import pandas as pd

from gaitstream.gaitpdb import Subject


def attach_labels(rows: pd.DataFrame, demographics: dict[str, Subject]) -> tuple[pd.DataFrame, list[str]]:
    """Rows of labelled subjects with ``pd`` (1 = Parkinson's) and ``study`` from demographics,
    and the sorted subject ids that have no label (excluded, reported in the run's data snapshot)."""
    known = rows["subject_id"].isin(demographics.keys())
    unlabelled = sorted(set(rows.loc[~known, "subject_id"]))
    kept = rows.loc[known].copy()
    kept["pd"] = kept["subject_id"].map(lambda s: int(demographics[s].parkinsons)).astype(int)
    kept["study"] = kept["subject_id"].map(lambda s: demographics[s].study)
    return kept.reset_index(drop=True), unlabelled
