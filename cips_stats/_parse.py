"""Reading values without silent coercion (private; used by :mod:`cips_stats.data`).

Every column is parsed into a :class:`Parsed`: the values (numbers, or text labels), which cells
are blank, which are unusable (text that is not a number; text with control characters), and
for each conversion that changed a value's text, a note per cell (``notes[rule]`` holds the
reason, or None). The loader records every note in ``SurveyData.coercions``, so nothing is
converted silently:

======================  ======================================================================
rule                    conversion
======================  ======================================================================
``text_whitespace``     surrounding white space removed (``" 4 "`` -> 4)
``text_invisible``      invisible characters removed (zero-width space, BOM, soft hyphen, ...)
``text_unicode``        text normalised to Unicode NFC (``"C" + U+0327`` -> ``"Ç"``)
``number_format``       a number written in a non-plain way: sign ``+4``, exponent ``4e0``,
                        leading zeros ``00004``, no digit before/after the mark ``.5``/``5.``;
                        and, for labels, a whole number written with a zero fraction ``3.0``
``code_label``          a text answer equal to a scale or missing-code label (case, white space,
                        ``_`` and apostrophes ignored) read as its code
======================  ======================================================================

Text columns are parsed once per distinct value (answer codes take a handful of values), so
the text work is independent of the number of rows.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

#: Text accepted as a number: optional sign, digits with an optional decimal part, optional exponent
#: ("4", "4.0", "+4", ".5", "1e1"). "nan", "inf", "1_000", "4,5" (with decimal=".") are not numbers.
NUMBER_TEXT = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUMBER_RE = re.compile(NUMBER_TEXT)
#: Plain number text, read without a note: "4", "-3", "0.42", "4.0".
_PLAIN_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_WHOLE_FLOAT_RE = re.compile(r"(-?(?:0|[1-9][0-9]*))\.0+")
#: Invisible (format) characters: removed, with a note.
_INVISIBLE_RE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e"
                           "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000e0001\U000e0020-\U000e007f]")
#: Control characters (C0 except tab/line ends, DEL, C1): a problem, never removed.
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass
class Parsed:
    """A parsed column (or its distinct values): see the module docstring."""

    value: np.ndarray
    blank: np.ndarray
    bad: np.ndarray
    notes: dict = field(default_factory=dict)

    def take(self, codes: np.ndarray) -> "Parsed":
        """Expand values parsed once per distinct value to the rows (``codes`` index the distinct values)."""
        notes = {}
        for rule, why in self.notes.items():
            if any(w is not None for w in why):
                notes[rule] = why[codes]
        return Parsed(self.value[codes], self.blank[codes], self.bad[codes], notes)

    def note_rows(self, rule: str) -> np.ndarray:
        """Rows (0-based) with a note of ``rule``."""
        why = self.notes.get(rule)
        if why is None:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(pd.notna(why))


def _fmt_number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _hexes(chars: list[str]) -> str:
    return ", ".join(sorted({f"U+{ord(c):04X}" for c in chars}))


def clean_text(v: str, notes: dict[str, str]) -> str:
    """``v`` without invisible characters and surrounding white space; each change noted in ``notes``."""
    inv = _INVISIBLE_RE.findall(v)
    if inv:
        v = _INVISIBLE_RE.sub("", v)
        notes["text_invisible"] = f"Invisible character(s) {_hexes(inv)} removed."
    t = v.strip()
    if t != v:
        notes["text_whitespace"] = "Text with surrounding white space, read without it."
    return t


def label_key(text: str) -> str:
    """A label compared without case, accents of composition, ``_``/``-``, apostrophes and extra spaces.

    Examples
    --------
    >>> label_key("Don't  know"), label_key("dont_know"), label_key(" Strongly AGREE ")
    ('dont know', 'dont know', 'strongly agree')
    """
    t = unicodedata.normalize("NFKC", text).casefold()
    t = re.sub(r"['\u2019`\u00b4]", "", t)
    return " ".join(re.sub(r"[_\-]", " ", t).split())


def label_codes(labels: Mapping[int, str]) -> dict[str, tuple[int, str]]:
    """``label_key -> (code, label)`` for labels that name exactly one code."""
    seen: dict[str, list[tuple[int, str]]] = {}
    for code, lab in labels.items():
        seen.setdefault(label_key(str(lab)), []).append((int(code), str(lab)))
    return {k: v[0] for k, v in seen.items() if len(v) == 1 and k}


def _plain(values: list, pattern: str) -> np.ndarray:
    """Which values are text fully matching ``pattern`` (vectorised: the common case needs no Python loop)."""
    s = pd.Series(values, dtype=object)
    is_text = s.map(type).to_numpy() == str
    out = np.zeros(len(values), dtype=bool)
    if is_text.any():
        out[is_text] = s[is_text].astype(str).str.fullmatch(pattern).to_numpy(dtype=bool)
    return out


def _each(values: list, todo: np.ndarray, one: Callable[[str, dict], Any], out: np.ndarray) -> Parsed:
    """Parse the values marked ``todo`` one by one into ``out`` (the others are already in it).

    ``None`` is blank; text is cleaned (:func:`clean_text`) and given to ``one(text, found)``, which
    returns ``(value, bad)``, or None for a blank, and adds its conversions to ``found``; each
    conversion becomes a note of its rule on that value.
    """
    k = len(values)
    blank = np.zeros(k, dtype=bool)
    bad = np.zeros(k, dtype=bool)
    notes: dict[str, np.ndarray] = {}
    for j in np.flatnonzero(todo).tolist():
        v = values[j]
        if v is None:
            blank[j] = True
            continue
        found: dict[str, str] = {}
        res = one(clean_text(v, found), found)
        if res is None:
            blank[j] = True
        else:
            out[j], bad[j] = res
        for rule, why in found.items():
            notes.setdefault(rule, np.full(k, None, dtype=object))[j] = why
    return Parsed(out, blank, bad, notes)


def parse_number_values(values: list, decimal: str = ".", labels: Mapping[str, tuple[int, str]] | None = None
                        ) -> Parsed:
    """Parse text values (str or None = blank) as numbers; see :func:`parse_numbers`.

    Plain numbers (``-?digits[.digits]``, the decimal mark as given) are converted at once; only
    the other values are examined one by one.
    """
    k = len(values)
    num = np.full(k, np.nan)
    mark = re.escape(decimal)
    plain = _plain(values, rf"-?(?:0|[1-9][0-9]*)(?:{mark}[0-9]+)?") if k > 64 else np.zeros(k, dtype=bool)
    if plain.any():
        text = pd.Series(values, dtype=object)[plain].astype(str)
        num[plain] = (text if decimal == "." else text.str.replace(decimal, ".", regex=False)).astype(float)

    def one(t: str, found: dict[str, str]) -> tuple[float, bool] | None:
        if t == "":
            return None
        x = _number(t, decimal, found)
        if x is None and labels:
            hit = labels.get(label_key(t))
            if hit is not None:
                x = float(hit[0])
                found["code_label"] = f"The label {t!r} read as code {hit[0]} ({hit[1]!r})."
        if x is None:
            found.pop("number_format", None)
            return np.nan, True
        return x, False

    return _each(values, ~plain, one, num)


def _number(t: str, decimal: str, found: dict[str, str]) -> float | None:
    """The number written in ``t`` (after cleaning), or None; a non-plain form is noted."""
    s = t
    if decimal != ".":
        if "." in s:
            return None
        s = s.replace(decimal, ".")
    if not _NUMBER_RE.fullmatch(s):
        return None
    x = float(s)
    if not _PLAIN_RE.fullmatch(s):
        found["number_format"] = (f"The text {t!r} read as the number {_fmt_number(x) if np.isfinite(x) else x} "
                                  f"(a sign, exponent, leading zeros or a bare decimal mark).")
    return x


def parse_label_values(values: list) -> Parsed:
    """Parse text values (str or None = blank) as labels; see :func:`parse_labels`.

    Plain text (printable ASCII without surrounding white space, not a whole number with a
    zero fraction) is taken as it is at once; only the other values are examined one by one.
    """
    k = len(values)
    out = np.full(k, None, dtype=object)
    plain = _plain(values, r"[!-~](?:[ -~]*[!-~])?") if k > 64 else np.zeros(k, dtype=bool)
    if plain.any():
        plain &= ~_plain(values, _WHOLE_FLOAT_RE.pattern)
        out[plain] = np.asarray(values, dtype=object)[plain]

    def one(t: str, found: dict[str, str]) -> tuple[str | None, bool] | None:
        nfc = unicodedata.normalize("NFC", t)
        if nfc != t:
            found["text_unicode"] = "Text normalised to Unicode NFC (composed characters)."
            t = nfc
        m = _WHOLE_FLOAT_RE.fullmatch(t)
        if m:
            found["number_format"] = f"The text {t!r} read as {m.group(1)!r} (a whole number with a zero fraction)."
            t = m.group(1)
        return None if t == "" else (t, _CONTROL_RE.search(t) is not None)

    return _each(values, ~plain, one, out)


def distinct(s: pd.Series) -> tuple[np.ndarray, Any] | None:
    """``(codes, uniques)`` of a text column (blank = -1), or None when it is not only text."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories
        if len(cats) == 0 or cats.inferred_type == "string":
            return s.cat.codes.to_numpy(), np.asarray(cats, dtype=object)  # int8/16/32 codes: kept small
        return None
    if isinstance(s.dtype, pd.StringDtype) or s.dtype == object:
        codes, uniq = pd.factorize(s, use_na_sentinel=True)
        if isinstance(s.dtype, pd.StringDtype) or (len(uniq) and all(type(v) is str for v in uniq)):
            k = len(uniq)
            small = np.int8 if k < 2**7 - 1 else np.int16 if k < 2**15 - 1 else np.int32 if k < 2**31 - 1 else np.int64
            return codes.astype(small), np.asarray(uniq, dtype=object)
    return None


def by_distinct(s: pd.Series, parse: Callable[[list], Parsed], known: tuple | None = None) -> Parsed:
    """Apply a parser of text values to the distinct values of a text column and expand to the rows."""
    codes, uniq = distinct(s) if known is None else known
    values = np.asarray(uniq, dtype=object).tolist() + [None]  # the last one stands for a blank
    return parse(values).take(np.where(codes < 0, len(uniq), codes.astype(np.int64)))


def _text_codes(s: pd.Series, known: tuple | None) -> tuple[np.ndarray, Any] | None:
    """``known``, or the :func:`distinct` values of a text-like column (None for other columns)."""
    if known is None and (isinstance(s.dtype, (pd.StringDtype, pd.CategoricalDtype)) or s.dtype == object):
        return distinct(s)
    return known


def is_blank_scalar(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, (float, np.floating)) and np.isnan(v)


def parse_numbers(s: pd.Series, known: tuple | None = None, decimal: str = ".",
                  labels: Mapping[str, tuple[int, str]] | None = None) -> Parsed:
    """Parse a column of numbers (codes, weights, iterations) without silent coercion.

    ``value`` is float64 (NaN when blank or not a number); ``bad`` marks values that are not
    numbers (text such as ``"abc"`` or ``"NA"``, booleans, other objects). ``decimal`` is the
    decimal mark of text numbers (``","``: ``"0,42"`` is 0.42 and ``"0.42"`` is not a number);
    ``labels`` (:func:`label_codes`) map answer labels to codes. ``known``: the column's
    :func:`distinct` when already computed.

    Examples
    --------
    >>> import pandas as pd
    >>> p = parse_numbers(pd.Series(["4", " 4 ", "+4", "4e0", "00004", "abc", None]))
    >>> p.value.tolist()[:5], p.bad.tolist()[5], sorted(p.notes)
    ([4.0, 4.0, 4.0, 4.0, 4.0], True, ['number_format', 'text_whitespace'])
    """
    known = _text_codes(s, known)
    if known is not None:
        return by_distinct(s, lambda vals: parse_number_values(vals, decimal, labels), known)
    n, dt = len(s), s.dtype
    false = np.zeros(n, dtype=bool)
    if pd.api.types.is_bool_dtype(dt) or pd.api.types.is_complex_dtype(dt):  # not codes (never the real part)
        blank = s.isna().to_numpy()
        return Parsed(np.full(n, np.nan), blank, ~blank)
    if pd.api.types.is_numeric_dtype(dt):
        num = s.to_numpy(dtype=float, na_value=np.nan)
        return Parsed(num, np.isnan(num), false)
    obj = s.astype(object)
    kind = pd.api.types.infer_dtype(obj, skipna=True)
    if kind in ("integer", "floating", "mixed-integer-float", "decimal", "empty"):
        num = pd.to_numeric(obj, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        blank = obj.isna().to_numpy()
        return Parsed(num, blank, ~blank & np.isnan(num))
    return _parse_mixed(obj, decimal, labels)


def _parse_mixed(obj: pd.Series, decimal: str, labels: Any) -> Parsed:
    """Numbers, text, booleans and other objects in one column (rare path)."""
    n = len(obj)
    vals = obj.tolist()
    is_str = np.array([isinstance(v, str) for v in vals], dtype=bool)
    na = np.array([is_blank_scalar(v) for v in vals], dtype=bool)
    is_num = np.array([isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
                       for v in vals], dtype=bool) & ~na
    num = np.full(n, np.nan)
    if is_num.any():
        num[is_num] = np.asarray([vals[i] for i in np.flatnonzero(is_num)], dtype=float)
    blank = na.copy()
    bad = ~na & ~is_num & ~is_str  # booleans and other objects
    notes: dict[str, np.ndarray] = {}
    if is_str.any():
        sub = parse_numbers(pd.Series(obj[is_str].tolist(), dtype=object), decimal=decimal, labels=labels)
        num[is_str], blank[is_str], bad[is_str] = sub.value, sub.blank, sub.bad
        for rule, why in sub.notes.items():
            notes.setdefault(rule, np.full(n, None, dtype=object))[is_str] = why
    return Parsed(num, blank, bad, notes)


def parse_labels(s: pd.Series, known: tuple | None = None) -> Parsed:
    """Key/label column -> text (str or None), blanks, control characters (``bad``) and notes.

    Whole numbers (``1``, ``1.0``, ``"1"``) give ``"1"``, so that an id read as a number from
    one format and as text from another is the same id.

    Examples
    --------
    >>> import pandas as pd
    >>> p = parse_labels(pd.Series(["NL", "N\\u200bL", " NL", 3.0, None], dtype=object))
    >>> p.value.tolist(), sorted(p.notes)
    (['NL', 'NL', 'NL', '3', None], ['text_invisible', 'text_whitespace'])
    """
    known = _text_codes(s, known)
    if known is not None:
        return by_distinct(s, parse_label_values, known)
    n, dt = len(s), s.dtype
    false = np.zeros(n, dtype=bool)
    if pd.api.types.is_bool_dtype(dt):
        vals = s.astype(object).to_numpy()
        out = np.array([None if pd.isna(v) else str(v) for v in vals], dtype=object)
        return Parsed(out, np.array([v is None for v in out], dtype=bool), false)
    if pd.api.types.is_integer_dtype(dt):
        na = s.isna().to_numpy()
        out = np.full(n, None, dtype=object)
        out[~na] = s[~na].astype("int64").astype(str).to_numpy(dtype=object)
        return Parsed(out, na, false)
    if pd.api.types.is_float_dtype(dt):
        v = s.to_numpy(dtype=float, na_value=np.nan)
        na = np.isnan(v)
        out = np.full(n, None, dtype=object)
        idx = np.flatnonzero(~na)
        uniq, inv = np.unique(v[idx], return_inverse=True)  # format each distinct number once
        out[idx] = np.array([_fmt_number(x) for x in uniq] + [""], dtype=object)[:-1][inv]
        return Parsed(out, na, false)
    obj = s.astype(object)
    if pd.api.types.infer_dtype(obj, skipna=True) == "empty":
        return Parsed(np.full(n, None, dtype=object), np.ones(n, dtype=bool), false)
    vals = obj.tolist()
    text = [v if isinstance(v, str) else None if is_blank_scalar(v) else
            (_fmt_number(v) if isinstance(v, (float, np.floating)) and not isinstance(v, bool) and np.isfinite(v)
             else str(v)) for v in vals]
    return parse_label_values(text)


def case_variants(vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spellings that differ only in case, mapped to the most frequent spelling (ties: the first seen).

    Returns the new values and, per row, the reason (None where unchanged).

    Examples
    --------
    >>> import numpy as np
    >>> out, why = case_variants(np.array(["NL", "nl", "NL", "BE", None], dtype=object))
    >>> out.tolist(), why[1]
    (['NL', 'NL', 'NL', 'BE', None], "'nl' read as 'NL', the most frequent spelling of the same value.")
    """
    codes, uniq = pd.factorize(pd.Series(vals, dtype=object), use_na_sentinel=True)
    why = np.full(len(vals), None, dtype=object)
    if len(uniq) < 2:
        return vals, why
    folded = [str(u).casefold() for u in uniq]
    if len(set(folded)) == len(folded):
        return vals, why
    counts = np.bincount(codes[codes >= 0], minlength=len(uniq))
    best: dict[str, int] = {}
    for k, f in enumerate(folded):  # first seen wins ties: factorize orders by first appearance
        if f not in best or counts[k] > counts[best[f]]:
            best[f] = k
    target = np.array([best[f] for f in folded])
    if (target == np.arange(len(uniq))).all():
        return vals, why
    out = vals.copy()
    changed = np.flatnonzero(target != np.arange(len(uniq)))
    for k in changed:
        rows = codes == k
        out[rows] = uniq[target[k]]
        why[rows] = f"{uniq[k]!r} read as {uniq[target[k]]!r}, the most frequent spelling of the same value."
    return out, why


def nested_cells(s: pd.Series) -> np.ndarray:
    """Rows of an object column holding a list, tuple, set, dict, array or other container."""
    if s.dtype != object:
        return np.zeros(0, dtype=np.int64)
    kind = pd.api.types.infer_dtype(s, skipna=True)
    if kind in ("string", "empty", "integer", "floating", "mixed-integer-float", "boolean", "decimal",
                "bytes", "datetime", "date", "time", "timedelta"):
        return np.zeros(0, dtype=np.int64)
    box = (list, tuple, set, frozenset, dict, np.ndarray, pd.Series, pd.DataFrame)
    return np.flatnonzero(np.fromiter((isinstance(v, box) for v in s.tolist()), dtype=bool, count=len(s)))
