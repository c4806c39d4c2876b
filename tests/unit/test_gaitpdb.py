"""The data-set reader: names, checksums, and malformed files reported with their line."""

from __future__ import annotations

import gzip

import pytest

from gaitstream import gaitpdb

ROW = "\t".join(["0.01"] + ["12.5"] * 18) + "\r\n"


def _ref(tmp_path, text: str | bytes, name="GaCo01_01.txt.gz"):
    path = tmp_path / name
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return gaitpdb.WalkRef.from_name(name, path)


def test_walk_names():
    ref = gaitpdb.WalkRef.from_name("JuPt03_06.txt.gz")
    assert (ref.walk_id, ref.subject_id, ref.study) == ("JuPt03_06", "JuPt03", "Ju")
    with pytest.raises(ValueError):
        gaitpdb.WalkRef.from_name("demographics.txt")


def test_reads_a_clean_file(tmp_path):
    rows = "".join("\t".join([f"{i / 100:.2f}"] + [str(i)] * 18) + "\r\n" for i in range(5))
    walk = gaitpdb.read_walk(_ref(tmp_path, rows))
    assert len(walk) == 5 and walk.forces.shape == (5, 18)
    assert walk.channel("total_r").tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "bad_line, reason",
    [
        ("0.03\t1\t2\r\n", "expected 19 columns"),
        ("\t".join(["0.03"] + ["x"] + ["1"] * 17) + "\r\n", "not a number"),
        ("\t".join(["0.03"] + ["nan"] * 18) + "\r\n", "NaN"),
        ("\t".join(["0.005"] + ["1"] * 18) + "\r\n", "does not increase"),
        ("\t".join(["0.03"] + ["99999"] * 18) + "\r\n", "force outside"),
    ],
)
def test_malformed_line_is_named(tmp_path, bad_line, reason):
    text = ROW + ROW.replace("0.01", "0.02", 1) + bad_line
    with pytest.raises(gaitpdb.WalkFileError, match=reason) as err:
        gaitpdb.read_walk(_ref(tmp_path, text))
    assert err.value.line == 3


def test_checksum_mismatch_and_bad_gzip(tmp_path):
    with pytest.raises(gaitpdb.WalkFileError, match="checksum mismatch"):
        gaitpdb.read_walk(_ref(tmp_path, ROW), expected_sha256="0" * 64)
    path = tmp_path / "GaCo02_01.txt.gz"
    path.write_bytes(b"not gzip")
    with pytest.raises(gaitpdb.WalkFileError, match="gzip"):
        gaitpdb.read_walk(gaitpdb.WalkRef.from_name(path.name, path))


def test_shared_data_set_is_complete_and_labelled():
    from gaitstream import config

    folder = config.load().path("data.gaitpdb_dir")
    refs, missing = gaitpdb.list_walks(folder)
    assert len(refs) == 280 and len(missing) == 26
    labels = gaitpdb.read_demographics(folder)
    assert {r.subject_id for r in refs} <= set(labels)
    assert sum(s.parkinsons for s in labels.values()) == 93
