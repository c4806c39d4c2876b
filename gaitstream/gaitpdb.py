"""The gaitpdb data set: file names, channels, sensor layout, verified reading of walk files.

One place that knows the format (``format.txt`` of the data set): replay, the API's upload
path and the tests all read walks through :func:`read_walk`, so a malformed file is reported
the same way everywhere: file, line and reason.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SAMPLE_RATE_HZ = 100
SENSORS_LEFT = tuple(f"l{i}" for i in range(1, 9))
SENSORS_RIGHT = tuple(f"r{i}" for i in range(1, 9))
SENSORS = SENSORS_LEFT + SENSORS_RIGHT
# The 18 force channels in file order (columns 2-19): 16 sensors, then each foot's total.
FORCE_CHANNELS = SENSORS + ("total_l", "total_r")
COLUMNS = ("time",) + FORCE_CHANNELS

# Sensor (X, Y) positions inside the insoles, from format.txt (arbitrary units).
SENSOR_XY = {
    "l1": (-500, -800),
    "l2": (-700, -400),
    "l3": (-300, -400),
    "l4": (-700, 0),
    "l5": (-300, 0),
    "l6": (-700, 400),
    "l7": (-300, 400),
    "l8": (-500, 800),
    "r1": (500, -800),
    "r2": (700, -400),
    "r3": (300, -400),
    "r4": (700, 0),
    "r5": (300, 0),
    "r6": (700, 400),
    "r7": (300, 400),
    "r8": (500, 800),
}

STUDIES = ("Ga", "Ju", "Si")
WALK_NAME = re.compile(r"^(?P<study>Ga|Ju|Si)(?P<group>Co|Pt)(?P<number>\d{2})_(?P<walk>\d{2})$")
# Plausible bounds for one sample: forces in newtons, time in seconds.
FORCE_MIN_N, FORCE_MAX_N = -100.0, 10_000.0
TIME_MAX_S = 24 * 3600.0


# Walking condition by walk number (format.txt, checked against the files and demographics.txt):
# Ju 02-07 are rhythmic-auditory-stimulation walks of patients only, Ga 10 dual-task walks exist for
# 15 patients and 6 controls. Condition is confounded with diagnosis, so models learn from usual
# walks only (see walk_condition); the others are scored and reported apart.
USUAL, DUAL_TASK, RAS = "usual", "dual_task", "ras"


def walk_condition(walk_id: str) -> str:
    """The walking condition of a walk id (``GaPt03_10`` → dual_task): the ONE rule for "usual"."""
    match = WALK_NAME.match(walk_id.split(".", 1)[0])
    if not match:
        raise ValueError(f"not a gaitpdb walk name: {walk_id!r}")
    study, number = match["study"], match["walk"]
    if study == "Ga":
        return USUAL if number in ("01", "02") else DUAL_TASK if number == "10" else f"Ga_{number}"
    if study == "Ju":
        return USUAL if number == "01" else RAS
    return USUAL if number == "01" else f"{study}_{number}"


def is_usual_walk(walk_id: str) -> bool:
    return walk_condition(walk_id) == USUAL


class WalkFileError(ValueError):
    """A walk file that cannot be used; ``line`` is 1-based (0 when the whole file is at fault)."""

    def __init__(self, source: str, line: int, reason: str):
        self.source, self.line, self.reason = source, line, reason
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class WalkRef:
    """One walk of the data set, named like ``GaCo01_02``. ``subject_id`` is the demographics ID."""

    walk_id: str
    subject_id: str
    study: str
    path: Path | None = None

    @classmethod
    def from_name(cls, name: str, path: Path | None = None) -> WalkRef:
        stem = name.split(".", 1)[0]
        match = WALK_NAME.match(stem)
        if not match:
            raise ValueError(f"not a gaitpdb walk name: {name!r}")
        subject = stem.split("_", 1)[0]
        return cls(walk_id=stem, subject_id=subject, study=match["study"], path=path)


@dataclass(frozen=True)
class Walk:
    """A walk's samples: ``time`` (n,), ``forces`` (n, 18) in FORCE_CHANNELS order."""

    ref: WalkRef
    time: np.ndarray
    forces: np.ndarray

    def __len__(self) -> int:
        return len(self.time)

    def channel(self, name: str) -> np.ndarray:
        return self.forces[:, FORCE_CHANNELS.index(name)]


def read_checksums(data_dir: Path) -> dict[str, str]:
    """``SHA256SUMS.txt``: file name (uncompressed, e.g. ``GaCo01_01.txt``) → sha256 hex."""
    sums = {}
    for line in (Path(data_dir) / "SHA256SUMS.txt").read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip().lstrip("*")] = digest.lower()
    return sums


def list_walks(data_dir: Path) -> tuple[list[WalkRef], list[str]]:
    """Walks present in ``data_dir`` (sorted), and the walk names listed in SHA256SUMS but absent."""
    data_dir = Path(data_dir)
    present = {}
    for path in sorted(data_dir.glob("*.txt.gz")):
        try:
            ref = WalkRef.from_name(path.name, path)
        except ValueError:
            continue
        present[ref.walk_id] = ref
    listed = {name.split(".", 1)[0] for name in read_checksums(data_dir) if WALK_NAME.match(name.split(".", 1)[0])}
    missing = sorted(listed - set(present))
    return [present[k] for k in sorted(present)], missing


def parse_walk(raw: bytes, ref: WalkRef, source: str | None = None) -> Walk:
    """Parse the text of a walk (19 tab/space-separated numbers a line), validating every row.

    A vectorized parse handles well-formed files; anything it rejects is parsed again line by
    line, which names the first line at fault.
    """
    source = source or ref.walk_id
    array = _fast_parse(raw)
    if array is not None:
        return Walk(ref, array[:, 0].copy(), array[:, 1:].copy())
    return _careful_parse(raw, ref, source)


def _fast_parse(raw: bytes) -> np.ndarray | None:
    """The whole file as an (n, 19) array if it is clean; None if any check fails."""
    try:
        frame = pd.read_csv(io.BytesIO(raw), sep="\t", header=None, dtype=np.float64, engine="c")
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    array = frame.to_numpy()
    if array.ndim != 2 or array.shape[1] != len(COLUMNS) or len(array) == 0 or not np.isfinite(array).all():
        return None
    time, forces = array[:, 0], array[:, 1:]
    if time[0] < 0 or time[-1] > TIME_MAX_S or (len(time) > 1 and not (np.diff(time) > 0).all()):
        return None
    if forces.min() < FORCE_MIN_N or forces.max() > FORCE_MAX_N:
        return None
    return array


def _careful_parse(raw: bytes, ref: WalkRef, source: str) -> Walk:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        ascii_line = raw[: exc.start].count(b"\n") + 1
        raise WalkFileError(source, ascii_line, "not ASCII text") from None
    rows: list[list[float]] = []
    for number, line in enumerate(io.StringIO(text), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(COLUMNS):
            raise WalkFileError(source, number, f"expected {len(COLUMNS)} columns, found {len(fields)}")
        try:
            values = [float(f) for f in fields]
        except ValueError:
            bad = next(f for f in fields if not _is_float(f))
            raise WalkFileError(source, number, f"not a number: {bad[:40]!r}") from None
        if not all(math.isfinite(v) for v in values):
            raise WalkFileError(source, number, "NaN or infinite value")
        if not 0.0 <= values[0] <= TIME_MAX_S:
            raise WalkFileError(source, number, f"time {values[0]} out of range")
        if rows and values[0] <= rows[-1][0]:
            raise WalkFileError(source, number, f"time {values[0]} does not increase")
        if not all(FORCE_MIN_N <= v <= FORCE_MAX_N for v in values[1:]):
            raise WalkFileError(source, number, f"force outside [{FORCE_MIN_N}, {FORCE_MAX_N}] N")
        rows.append(values)
    if not rows:
        raise WalkFileError(source, 0, "no samples")
    array = np.asarray(rows, dtype=np.float64)
    return Walk(ref, array[:, 0].copy(), array[:, 1:].copy())


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_walk(ref: WalkRef, expected_sha256: str | None = None) -> Walk:
    """Read a ``.txt.gz`` (or plain ``.txt``) walk, verifying the uncompressed checksum if given."""
    assert ref.path is not None, "WalkRef without a path"
    raw = ref.path.read_bytes()
    if ref.path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise WalkFileError(str(ref.path), 0, f"not a valid gzip file: {exc}") from None
    if expected_sha256 is not None:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != expected_sha256:
            raise WalkFileError(
                str(ref.path), 0, f"checksum mismatch: sha256 {digest[:12]}… != {expected_sha256[:12]}…"
            )
    return parse_walk(raw, ref, str(ref.path))


def iter_verified_walks(refs: Iterable[WalkRef], checksums: dict[str, str]) -> Iterator[Walk | WalkFileError]:
    """Each walk read and checked against SHA256SUMS, or the error that makes it unusable."""
    for ref in refs:
        try:
            yield read_walk(ref, checksums.get(f"{ref.walk_id}.txt"))
        except WalkFileError as exc:
            yield exc


@dataclass(frozen=True)
class Subject:
    subject_id: str
    study: str
    parkinsons: bool  # demographics Group 1 = PD, 2 = control


def read_demographics(data_dir: Path) -> dict[str, Subject]:
    """Labels by subject ID from ``demographics.txt`` (the only source of labels)."""
    subjects = {}
    lines = (Path(data_dir) / "demographics.txt").read_text().splitlines()
    header = lines[0].split("\t")
    id_col, study_col, group_col = header.index("ID"), header.index("Study"), header.index("Group")
    for line in lines[1:]:
        fields = line.split("\t")
        if len(fields) <= group_col or not fields[id_col].strip():
            continue
        group = fields[group_col].strip()
        if group not in ("1", "2"):
            continue
        subject_id = fields[id_col].strip()
        subjects[subject_id] = Subject(subject_id, fields[study_col].strip(), parkinsons=(group == "1"))
    return subjects
