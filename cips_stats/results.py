"""The shared result base: provenance, ``to_frame()``, ``to_dict()`` and ``summary()``.

Every statistical function in cips_stats returns an object derived from
:class:`Result` (usually a frozen dataclass).  Results hold raw floats — rounding
happens only when a summary is displayed — plus :class:`Provenance` (package
version, instrument hash, data fingerprint, seed, method and options) and the
statistically meaningful flags found while computing.

Examples
--------
>>> from dataclasses import dataclass
>>> import cips_stats as cs
>>> @dataclass(frozen=True)
... class Mean(cs.results.Result):
...     estimate: float = 0.0
...     se: float = 0.0
>>> r = Mean(estimate=2.5, se=0.1, provenance=cs.results.Provenance.build(method="mean", seed=1))
>>> r.to_frame()
   estimate   se
0       2.5  0.1
>>> r.to_dict()["provenance"]["method"]
'mean'
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import numpy as np
import pandas as pd

from .errors import Flag

__all__ = ["Provenance", "Result", "Summary", "fingerprint_frame", "resolve_seed", "to_jsonable"]


@functools.lru_cache(maxsize=1)
def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("cips-stats")
    except Exception:  # pragma: no cover - running from a source tree without install
        from . import __version__

        return __version__


def resolve_seed(seed: Any = None) -> int:
    """Return the integer seed a computation runs with; ``None`` draws one from entropy.

    Every public function that uses random numbers takes ``seed=`` (default
    ``None``), passes it through this function and records the returned integer
    in its result's :class:`Provenance`, so that any result can be reproduced
    from its own output.

    Parameters
    ----------
    seed : int, numpy.integer or None
        A non-negative integer, or ``None`` to draw a fresh 63-bit seed.

    Returns
    -------
    int
        The seed to use (and to record).

    Raises
    ------
    CipsError
        If ``seed`` is not ``None`` and not a non-negative integer (booleans are refused).

    Examples
    --------
    >>> from cips_stats.results import resolve_seed
    >>> resolve_seed(7)
    7
    >>> isinstance(resolve_seed(None), int)
    True
    """
    from .errors import CipsError

    if seed is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise CipsError(f"seed must be None or a non-negative integer, got {seed!r}.")
    return int(seed)


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """Return a stable SHA-256 fingerprint of a DataFrame's content (values, columns, dtypes).

    Parameters
    ----------
    frame : pandas.DataFrame
        The table to fingerprint.

    Returns
    -------
    str
        ``"sha256:"`` followed by 16 hex digits. Identical content gives the
        identical fingerprint across runs and machines.

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats.results import fingerprint_frame
    >>> fingerprint_frame(pd.DataFrame({"a": [1, 2]})) == fingerprint_frame(pd.DataFrame({"a": [1, 2]}))
    True
    """
    h = hashlib.sha256()
    h.update(json.dumps([str(c) for c in frame.columns]).encode())
    h.update(json.dumps([str(t) for t in frame.dtypes]).encode())
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    h.update(hashed.tobytes())
    return "sha256:" + h.hexdigest()[:16]


@dataclass(frozen=True)
class Provenance:
    """Where a result came from.

    Parameters
    ----------
    package_version : str
        Version of cips_stats that computed it.
    method : str
        Name of the procedure (e.g. ``"cronbach_alpha"``).
    instrument_hash : str, optional
        Hash of the instrument specification used.
    data_fingerprint : str, optional
        Fingerprint of the input data.
    seed : int, optional
        Seed of any random number generation.
    options : dict
        The options the procedure ran with (defaults included).
    created : str
        UTC timestamp, informational only (excluded from equality).
    """

    package_version: str
    method: str = ""
    instrument_hash: str | None = None
    data_fingerprint: str | None = None
    seed: int | None = None
    options: dict = field(default_factory=dict)
    created: str = field(default="", compare=False)

    @classmethod
    def build(
        cls,
        method: str = "",
        *,
        data: Any = None,
        instrument: Any = None,
        seed: int | None = None,
        options: Mapping[str, Any] | None = None,
        data_fingerprint: str | None = None,
    ) -> "Provenance":
        """Build provenance from the objects at hand.

        ``data`` may be a ``SurveyData`` (its fingerprint and instrument are used)
        or a DataFrame (fingerprinted here).
        """
        fp = data_fingerprint
        inst_hash = None
        if data is not None:
            fp = fp or getattr(data, "fingerprint", None)
            if fp is None and isinstance(data, pd.DataFrame):
                fp = fingerprint_frame(data)
            instrument = instrument or getattr(data, "instrument", None)
        if instrument is not None:
            inst_hash = getattr(instrument, "hash", None)
            if callable(inst_hash):
                inst_hash = inst_hash()
        return cls(
            package_version=_package_version(),
            method=method,
            instrument_hash=inst_hash,
            data_fingerprint=fp,
            seed=seed,
            options=dict(options or {}),
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return provenance as a JSON-friendly dictionary."""
        return to_jsonable(dataclasses.asdict(self))


def to_jsonable(obj: Any) -> Any:
    """Convert numpy/pandas/dataclass objects to plain JSON-serialisable Python.

    Non-finite floats become ``None`` only at serialisation; flags explain them.

    Parameters
    ----------
    obj : Any
        A result, dataclass, DataFrame, Series, array, mapping, sequence or scalar.

    Returns
    -------
    Any
        Nested dicts, lists, str, int, float, bool and None; a DataFrame becomes
        ``{"columns": [...], "data": [[...], ...]}``.

    Examples
    --------
    >>> import numpy as np
    >>> from cips_stats.results import to_jsonable
    >>> to_jsonable({"a": np.float64(1.5), "b": np.array([1, 2]), "c": float("nan")})
    {'a': 1.5, 'b': [1, 2], 'c': None}
    """
    if isinstance(obj, Result):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, pd.DataFrame):
        return {"columns": [str(c) for c in obj.columns],
                "data": [[to_jsonable(v) for v in row] for row in obj.itertuples(index=False, name=None)]}
    if isinstance(obj, pd.Series):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    return str(obj)


class Summary:
    """A renderable summary: a title, key-value header lines and tables.

    ``str(summary)`` gives text; ``summary.to_html()`` gives an HTML fragment.
    Values are rounded for display only (``digits``).
    """

    def __init__(self, title: str, header: Mapping[str, Any] | None = None,
                 tables: Mapping[str, pd.DataFrame] | None = None,
                 notes: list[str] | None = None, digits: int = 3):
        self.title = title
        self.header = dict(header or {})
        self.tables = dict(tables or {})
        self.notes = list(notes or [])
        self.digits = digits

    def _fmt(self, v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return f"{v:.{self.digits}f}" if math.isfinite(v) else str(v)
        if isinstance(v, tuple) and all(isinstance(x, (float, np.floating)) for x in v):
            return "(" + ", ".join(self._fmt(x) for x in v) + ")"
        return str(v)

    def __str__(self) -> str:
        lines = [self.title, "=" * len(self.title)]
        width = max((len(k) for k in self.header), default=0)
        for k, v in self.header.items():
            lines.append(f"{k:<{width}}  {self._fmt(v)}")
        for name, table in self.tables.items():
            lines.append("")
            lines.append(name)
            lines.append("-" * len(name))
            lines.append(table.round(self.digits).to_string())
        if self.notes:
            lines.append("")
            lines.extend(f"Note: {n}" for n in self.notes)
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_html(self) -> str:
        """Return the summary as an HTML fragment."""
        import html

        parts = [f"<h3>{html.escape(self.title)}</h3>"]
        if self.header:
            parts.append("<table class='cips-header'>")
            for k, v in self.header.items():
                parts.append(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(self._fmt(v))}</td></tr>")
            parts.append("</table>")
        for name, table in self.tables.items():
            parts.append(f"<h4>{html.escape(name)}</h4>")
            parts.append(table.round(self.digits).to_html(classes="cips-table", border=0))
        for n in self.notes:
            parts.append(f"<p class='cips-note'>{html.escape(n)}</p>")
        return "\n".join(parts)


def split_pairs(values: Mapping[str, Any]) -> dict[str, Any]:
    """One flat row from named values: a ``(low, high)`` pair ``x`` becomes ``x_low``, ``x_high``.

    Longer tuples become ``x_0``, ``x_1``...; other values are kept as they are.

    Parameters
    ----------
    values : mapping
        Names and values (e.g. a CFA's fit measures).

    Returns
    -------
    dict
        The flat row.

    Examples
    --------
    >>> split_pairs({"rmsea": 0.05, "rmsea_ci": (0.03, 0.07)})
    {'rmsea': 0.05, 'rmsea_ci_low': 0.03, 'rmsea_ci_high': 0.07}
    """
    row: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, tuple) and len(v) == 2:
            row[f"{k}_low"], row[f"{k}_high"] = v
        elif isinstance(v, tuple):
            row.update({f"{k}_{i}": x for i, x in enumerate(v)})
        else:
            row[k] = v
    return row


@dataclass(frozen=True)
class Result:
    """Base class of all results.

    Subclasses are frozen dataclasses that add their own fields.  Every result
    has ``provenance`` and ``flags`` (statistically meaningful conditions found
    while computing, e.g. Heywood cases or small cells), and the accessors
    ``to_frame()``, ``to_dict()`` and ``summary()``.
    """

    provenance: Provenance | None = field(default=None, kw_only=True)
    flags: tuple[Flag, ...] = field(default=(), kw_only=True)

    #: Fields that ``to_dict()`` gives by their shape only (``name_shape``): bulky replicate
    #: arrays, reproducible from the seed in the provenance.
    shape_only: ClassVar[tuple[str, ...]] = ()

    # -- accessors ---------------------------------------------------------
    def _scalar_fields(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            if f.name in ("provenance", "flags"):
                continue
            v = getattr(self, f.name)
            if isinstance(v, (int, float, str, bool, np.integer, np.floating)) or v is None:
                out[f.name] = v
            elif isinstance(v, tuple) and len(v) <= 4 and all(
                isinstance(x, (int, float, np.integer, np.floating)) for x in v
            ):
                out[f.name] = v
        return out

    def to_frame(self) -> pd.DataFrame:
        """Return the main table of the result as a tidy DataFrame.

        A result with a DataFrame field named ``table`` returns a copy of it; otherwise
        the default gives one row with the scalar fields (a ``(low, high)`` pair
        ``x`` becomes ``x_low`` and ``x_high``).  Results may override this.
        """
        table = getattr(self, "table", None)
        if isinstance(table, pd.DataFrame) and "table" in {f.name for f in dataclasses.fields(self)}:
            return table.copy()
        return pd.DataFrame([split_pairs(self._scalar_fields())])

    def to_dict(self) -> dict[str, Any]:
        """Return the whole result as a JSON-serialisable dictionary, tagged with its kind.

        Fields whose name starts with ``_`` (internal state) are left out; those named in
        ``shape_only`` appear as ``name_shape`` (their shape).
        """
        out: dict[str, Any] = {"kind": type(self).__name__}
        for f in dataclasses.fields(self):
            if f.name.startswith("_"):
                continue
            v = getattr(self, f.name)
            if f.name in self.shape_only:
                out[f.name + "_shape"] = None if v is None else list(np.shape(v))
            else:
                out[f.name] = to_jsonable(v)
        return out

    def to_json(self, path: str | None = None, **kwargs: Any) -> str:
        """Serialise ``to_dict()`` to JSON; write it to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=kwargs.pop("indent", 2), **kwargs)
        if path is not None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        return text

    def summary(self) -> Summary:
        """Return a renderable :class:`Summary` (text via ``str()``, HTML via ``to_html()``)."""
        header = {k: v for k, v in self._scalar_fields().items()}
        tables = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, pd.DataFrame) and len(v) <= 200:
                tables[f.name] = v
        notes = [fl.message for fl in self.flags]
        return Summary(type(self).__name__, header=header, tables=tables, notes=notes)

    @property
    def warnings(self) -> tuple[Flag, ...]:
        """Alias of ``flags`` restricted to severity ``warning`` or ``error``."""
        return tuple(f for f in self.flags if f.severity in ("warning", "error"))
