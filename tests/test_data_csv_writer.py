"""The fast CSV writer of ``write_table``/``write_raw`` writes exactly the bytes of the pandas writer."""

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs
from cips_stats import _io


def _both(frame, tmp_path, monkeypatch):
    fast = tmp_path / "fast.csv"
    assert _io._write_csv_fast(frame, fast)
    monkeypatch.setattr(_io, "_write_csv_fast", lambda *a: False)
    slow = tmp_path / "slow.csv"
    _io.write_table(frame, slow)
    monkeypatch.undo()
    return fast.read_bytes(), slow.read_bytes()


ODD = pd.DataFrame({
    "a": ["=1+1", "x,y", 'q"q', "line\nbreak", None, "", "'x", "+4"],
    "b": [1.5, np.nan, 2, 3, 4, 5, 6, 7],
    "c": [1, 2, 3, 4, 5, 6, 7, 8],
    "d": [True, False] * 4,
    "e": [1.0, np.nan] * 4,
    "f": [np.inf, 1.0, 2, 3, 4, 5, 6, 7],
    "g": pd.array(["a", None, "b", "-c", "d", "e", "f", "g"], dtype="str"),
    "h,i": [1e20, 1e-7, 0.1, 1 / 3, -2.0, 0, 0.5, 1],
    "j": [np.nan] * 8,
})


@pytest.mark.parametrize("frame", [ODD, ODD.iloc[:0], ODD.assign(a=ODD["a"].where(ODD.index != 3, "cr\rx"))],
                         ids=["odd", "empty", "carriage-return"])
def test_fast_writer_same_bytes(frame, tmp_path, monkeypatch):
    fast, slow = _both(frame, tmp_path, monkeypatch)
    assert fast == slow


def test_fast_writer_same_bytes_on_a_survey(tmp_path, monkeypatch):
    sim = cs.simulate(seed=3, n_countries=3, n_repeat=2, n_officials=40, n_private=30, small_cells=True)
    fast, slow = _both(sim.raw, tmp_path, monkeypatch)
    assert fast == slow
    p = cs.data.write_raw(sim.raw, tmp_path / "raw.csv", instrument=sim.instrument)
    assert cs.load(p, instrument=sim.instrument).fingerprint == sim.data.fingerprint


def test_fast_writer_declines_what_it_cannot_write(tmp_path):
    mixed = pd.DataFrame({"a": ["x", 1]})
    assert not _io._write_csv_fast(mixed, tmp_path / "m.csv")
    assert not (tmp_path / "m.csv").exists()
    cat = pd.DataFrame({"a": pd.Categorical(["x", "y"])})
    assert not _io._write_csv_fast(cat, tmp_path / "c.csv")
    _io.write_table(mixed, tmp_path / "m.csv")          # the pandas writer takes over
    assert (tmp_path / "m.csv").read_text() == "a\nx\n1\n"


def _fields_reference(arr, sep):
    """Fields and length of every line, counted one line at a time."""
    text = arr.tobytes()
    lines = text.split(b"\n")
    if text.endswith(b"\n"):
        lines = lines[:-1]
    fields = [line.count(sep.encode()) + 1 for line in lines]
    length = [len(line) - (1 if line.endswith(b"\r") else 0) for line in lines]
    return np.array(fields), np.array(length)


def test_fields_per_line_counts():
    """The record check's separator counts (reduceat in int16, int64 for very long lines) equal a line loop."""
    rng = np.random.default_rng(0)
    alphabet = np.frombuffer(b'ab,;\n\r\n,,x', dtype=np.uint8)
    for _ in range(500):
        arr = alphabet[rng.integers(0, alphabet.size, rng.integers(1, 40))].copy()
        for sep in ",;":
            got = _io._fields_per_line(arr, sep)
            want = _fields_reference(arr, sep)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
    long = np.frombuffer(b"a" + b"," * 40_000 + b"\nb,c\n", dtype=np.uint8)
    np.testing.assert_array_equal(_io._fields_per_line(long, ",")[0], [40_001, 2])
