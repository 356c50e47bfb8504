"""The survey instrument: factors, items, respondent groups, answer scale and missing codes.

Nothing CIPS-specific is hard-coded outside an :class:`Instrument`: the key
factors, the questionnaires of each respondent group and their items, the
answer scale, the "don't know"/"refused" codes and the demographic fields all
come from the specification, so the package serves other perception surveys
too.  :meth:`Instrument.default` ships a CIPS-like instrument written for this
package (the ten key factors of the WCO Revised Arusha Declaration).

Examples
--------
>>> import cips_stats as cs
>>> inst = cs.Instrument.default()
>>> [f.id for f in inst.key_factors][:3]
['leadership', 'regulatory', 'transparency']
>>> inst.factor_items("leadership", group="officials")
('LC1', 'LC2', 'LC3', 'LC4', 'LC5')
>>> inst.item("LC3").reverse
True
>>> inst4 = cs.Instrument.default(points=4)
>>> inst4.scale.points, inst4.scale.favourable
(4, (3, 4))
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import DataError, Problem

__all__ = ["Scale", "Group", "Demographic", "Factor", "Item", "Instrument", "ColumnSpec", "parse_columns",
           "UnknownIdError",
           "COLUMN_TARGETS", "MAX_SCALE_POINTS", "SCHEMA"]

_DEFAULT_LABELS = {
    4: ("Strongly disagree", "Disagree", "Agree", "Strongly agree"),
    5: ("Strongly disagree", "Disagree", "Neither agree nor disagree", "Agree", "Strongly agree"),
}


@dataclass(frozen=True)
class Scale:
    """An answer scale with codes ``1 .. points``.

    Parameters
    ----------
    points : int
        Number of answer categories (at least 2); valid codes are ``1..points``.
    labels : tuple of str
        One label per code.
    favourable : tuple of int
        Codes counted as favourable ("top-k box"), e.g. ``(4, 5)``.
    missing : dict
        Declared non-substantive codes and their meaning, e.g.
        ``{8: "dont_know", 9: "refused"}``; they become missing with that reason.
    """

    points: int = 5
    labels: tuple[str, ...] = _DEFAULT_LABELS[5]
    favourable: tuple[int, ...] = (4, 5)
    missing: Mapping[int, str] = field(default_factory=lambda: {8: "dont_know", 9: "refused"})

    def __hash__(self) -> int:
        return hash((self.points, tuple(self.labels), tuple(self.favourable),
                     tuple(sorted((int(k), str(v)) for k, v in self.missing.items()))))

    @property
    def min(self) -> int:
        """Lowest valid code (always 1)."""
        return 1

    @property
    def max(self) -> int:
        """Highest valid code."""
        return self.points

    @property
    def codes(self) -> tuple[int, ...]:
        """Valid substantive codes."""
        return tuple(range(1, self.points + 1))

    def to_dict(self) -> dict[str, Any]:
        """Return the scale as a YAML-friendly dictionary."""
        return {
            "points": self.points,
            "labels": list(self.labels),
            "favourable": list(self.favourable),
            "missing": {int(k): str(v) for k, v in sorted(self.missing.items())},
        }


@dataclass(frozen=True)
class Group:
    """A respondent group with its own questionnaire (e.g. officials, private sector)."""

    id: str
    label: str = ""


@dataclass(frozen=True)
class Demographic:
    """A demographic field: its column name, categories and the groups that are asked it
    (empty ``groups``: asked of every group)."""

    name: str
    label: str = ""
    categories: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Factor:
    """A key factor, or an index of items that cuts across factors.

    Parameters
    ----------
    id : str
        Identifier used in results (``factor`` column).
    label : str
        Human-readable name.
    kind : {"key_factor", "index"}
        Key factors own their items; an index names its items explicitly
        (``items``) and is analysed like a factor everywhere downstream.
    items : tuple of str
        For an index, its item ids. For a key factor, filled in from the items.
    description : str
        Free text.
    """

    id: str
    label: str = ""
    kind: str = "key_factor"
    items: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Item:
    """One survey item.

    Parameters
    ----------
    id : str
        Column name of the item in the respondent table.
    factor : str
        Key factor the item belongs to.
    groups : tuple of str
        Respondent groups that are asked the item.
    text : str
        Wording.
    reverse : bool
        True when agreement means an unfavourable perception; the loader
        recodes such answers as ``points + 1 - code`` (once).
    """

    id: str
    factor: str
    groups: tuple[str, ...]
    text: str = ""
    reverse: bool = False


#: Respondent-table columns a ``columns:`` entry may fill (besides demographics and items).
COLUMN_TARGETS = ("respondent_id", "country", "iteration", "group", "weight", "stratum", "cluster")

#: Most points an answer scale may have (a guard against ``points: 1000000000``).
MAX_SCALE_POINTS = 100


@dataclass(frozen=True)
class ColumnSpec:
    """Where one column of the respondent table comes from in the user's file.

    Exactly one of ``column``, ``value``, ``column_or_value`` or ``generate`` is set.

    Parameters
    ----------
    target : str
        The respondent-table column (``respondent_id``, ``country``, ``iteration``,
        ``group``, ``weight``, ``stratum``, ``cluster``, a demographic or an item id).
    column : str, optional
        The file's own column name (a rename).
    value : str, optional
        A constant for every row (e.g. ``country: {value: NL}`` for a one-country file).
    column_or_value : str, optional
        A column when the file has one of that name, else a constant (what the command-line
        flags ``--country``, ``--iteration`` and ``--group`` give).
    labels : tuple of (str, int)
        For ``iteration``: labels of the file mapped to iteration numbers (``2019-20: 1``).
    generate : bool
        For ``respondent_id``: number the rows ``1..n`` (a file without ids).

    Examples
    --------
    >>> from cips_stats.instrument import ColumnSpec
    >>> ColumnSpec.parse("weight", "pondération").column
    'pondération'
    >>> ColumnSpec.parse("iteration", {"column": "wave", "labels": {"2019-20": 1}}).labels
    (('2019-20', 1),)
    """

    target: str
    column: str | None = None
    value: str | None = None
    column_or_value: str | None = None
    labels: tuple[tuple[str, int], ...] = ()
    generate: bool = False

    @classmethod
    def parse(cls, target: str, spec: Any, where: str = "columns") -> "ColumnSpec":
        """A spec from its YAML/dict form: a column name, or a mapping with ``column``, ``value``,
        ``column_or_value``, ``labels``, ``generate``; a malformed one raises ``DataError``."""
        def bad(msg: str) -> DataError:
            return DataError(f"The column mapping {where}.{target} is invalid: {msg}",
                             [_problem("columns_invalid", msg, None, f"{where}.{target}", _short(spec))])

        if isinstance(spec, str):
            if not spec:
                raise bad("the column name is empty.")
            return cls(target=target, column=spec)
        if isinstance(spec, ColumnSpec):
            return replace(spec, target=target)
        if not isinstance(spec, Mapping):
            raise bad("expected a column name or a mapping with column, value, column_or_value, labels or generate.")
        unknown = [k for k in spec if k not in _COLUMN_SPEC_KEYS]
        if unknown:
            raise bad(f"unknown key {unknown[0]!r}{_did_you_mean(str(unknown[0]), _COLUMN_SPEC_KEYS)}.")
        kinds = [k for k in ("column", "value", "column_or_value") if spec.get(k) is not None]
        gen = spec.get("generate", False)
        if not isinstance(gen, bool):
            raise bad("generate must be true or false.")
        if len(kinds) + bool(gen) != 1:
            raise bad("give exactly one of column, value, column_or_value, generate.")
        if gen and target != "respondent_id":
            raise bad("generate: true is only for respondent_id.")
        labels = spec.get("labels") or {}
        if labels and target != "iteration":
            raise bad("labels are only for iteration.")
        if not isinstance(labels, Mapping):
            raise bad("labels must map labels to positive integers.")
        lab = []
        for k, v in labels.items():
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise bad(f"the label {k!r} must map to a positive integer, not {v!r}.")
            lab.append((str(k), int(v)))
        vals = {k: (None if spec.get(k) is None else str(spec.get(k))) for k in ("column", "value", "column_or_value")}
        return cls(target=target, labels=tuple(lab), generate=bool(gen), **vals)

    def to_dict(self) -> Any:
        """The YAML form (a plain column name when the spec is a rename)."""
        if self.column is not None and not self.labels:
            return self.column
        out: dict[str, Any] = {}
        for k in ("column", "value", "column_or_value"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        if self.generate:
            out["generate"] = True
        if self.labels:
            out["labels"] = dict(self.labels)
        return out


_COLUMN_SPEC_KEYS = ("column", "value", "column_or_value", "labels", "generate")


def _short(v: Any) -> Any:
    text = repr(v)
    return v if len(text) <= 80 else text[:77] + "..."


def _did_you_mean(key: str, known: Iterable[str], cutoff: float = 0.6) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(known), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_columns(spec: Any, where: str = "columns") -> tuple[ColumnSpec, ...]:
    """A ``columns:`` mapping (target -> spec) as a tuple of :class:`ColumnSpec`.

    Parameters
    ----------
    spec : mapping or None
        ``{target: column name or {column|value|column_or_value|labels|generate}}``.
    where : str
        Where the mapping came from, for messages.

    Returns
    -------
    tuple of ColumnSpec
        In the mapping's order; empty for None. A malformed entry raises ``DataError``.

    Examples
    --------
    >>> from cips_stats.instrument import parse_columns
    >>> [c.target for c in parse_columns({"weight": "w", "country": {"value": "NL"}})]
    ['weight', 'country']
    """
    if spec is None:
        return ()
    if not isinstance(spec, Mapping):
        raise DataError(f"{where} must map respondent-table columns to the file's columns.",
                        [_problem("columns_invalid", "Expected a mapping.", None, where, _short(spec))])
    return tuple(ColumnSpec.parse(str(t), s, where) for t, s in spec.items())


class UnknownIdError(DataError, KeyError):
    """An item, factor or group id the instrument does not declare (a ``DataError`` that is also a
    ``KeyError``, as a mapping lookup would raise)."""

    __str__ = DataError.__str__


def _unknown(kind: str, key: str, inst_name: str, known: Iterable[str]) -> UnknownIdError:
    known = list(known)
    shown = ", ".join(known[:12]) + (f", ... ({len(known)} in all)" if len(known) > 12 else "")
    msg = f"Unknown {kind} {key!r} in instrument {inst_name!r}{_did_you_mean(str(key), known)}; known: {shown}."
    return UnknownIdError(msg, [_problem(f"{kind}_unknown", msg, None, kind, key)])


def _as_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int,)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.strip().lower() in ("true", "yes", "1")
    raise ValueError(f"{where} must be true or false, got {value!r}")


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _problem(rule: str, message: str, source: str | None, column: str | None = None, value: Any = None) -> Problem:
    return Problem(rule=rule, message=message, file=source, column=column, value=value)


@dataclass(frozen=True)
class Instrument:
    """A survey instrument specification.

    Parameters
    ----------
    name, version, description : str
        Identification.
    scale : Scale
        Answer scale shared by all items.
    groups : tuple of Group
        Respondent groups (questionnaires).
    factors : tuple of Factor
        Key factors and indices (``kind="index"``), in reporting order.
    items : tuple of Item
        All items of all questionnaires.
    demographics : tuple of Demographic
        Demographic fields.
    columns : tuple of ColumnSpec
        Where the respondent-table columns come from in the user's files (renames such as
        ``weight: pondération``, constants such as ``country: {value: NL}``, iteration labels,
        generated ids); empty when the files use the respondent-table names.

    Notes
    -----
    The specification is validated on construction: unknown factors or
    groups, duplicate ids, empty factors and bad scales raise
    :class:`~cips_stats.errors.DataError` listing every problem.

    Examples
    --------
    >>> import cips_stats as cs
    >>> inst = cs.Instrument.default()
    >>> len(inst.items_for("officials")), len(inst.items_for("private"))
    (50, 40)
    >>> inst.factor_items("whistleblower", group="private")
    ('LC2', 'AI2', 'AI6', 'CC2')
    """

    name: str
    scale: Scale
    groups: tuple[Group, ...]
    factors: tuple[Factor, ...]
    items: tuple[Item, ...]
    demographics: tuple[Demographic, ...] = ()
    version: str = "1"
    description: str = ""
    source: str | None = field(default=None, compare=False)
    columns: tuple[ColumnSpec, ...] = ()

    def __post_init__(self) -> None:
        self._validate()

    def __hash__(self) -> int:
        return hash(self.hash)

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        src = self.source
        probs: list[Problem] = []
        sc = self.scale
        if not isinstance(sc.points, int) or isinstance(sc.points, bool) or not 2 <= sc.points <= MAX_SCALE_POINTS:
            probs.append(_problem("scale_points", f"The scale needs an integer number of points from 2 to "
                                  f"{MAX_SCALE_POINTS}.", src, "scale.points", sc.points))
        else:
            if len(sc.labels) != sc.points:
                probs.append(_problem("scale_labels", f"The scale has {sc.points} points but {len(sc.labels)} labels.", src, "scale.labels", list(sc.labels)))
            bad_fav = [c for c in sc.favourable if c not in range(1, sc.points + 1)]
            if bad_fav or not sc.favourable:
                probs.append(_problem("scale_favourable", "Favourable codes must be a non-empty subset of the scale's codes.", src, "scale.favourable", list(sc.favourable)))
            bad_codes = [c for c in sc.missing if isinstance(c, bool) or not isinstance(c, (int,)) and not (
                isinstance(c, float) and float(c).is_integer())]
            if bad_codes:
                probs.append(_problem("scale_missing", "Missing-value codes must be integers.", src, "scale.missing", bad_codes))
            clash = [c for c in sc.missing if c not in bad_codes and 1 <= int(c) <= sc.points]
            if clash:
                probs.append(_problem("scale_missing", "Missing-value codes must lie outside the scale's codes.", src, "scale.missing", clash))
        group_ids = [g.id for g in self.groups]
        if not group_ids:
            probs.append(_problem("groups_empty", "The instrument declares no respondent group.", src, "groups"))
        for gid in {g for g in group_ids if group_ids.count(g) > 1}:
            probs.append(_problem("group_duplicate", "Duplicate group id.", src, "groups", gid))
        fids = [f.id for f in self.factors]
        for fid in {f for f in fids if fids.count(f) > 1}:
            probs.append(_problem("factor_duplicate", "Duplicate factor id.", src, "factors", fid))
        iids = [i.id for i in self.items]
        for iid in {i for i in iids if iids.count(i) > 1}:
            probs.append(_problem("item_duplicate", "Duplicate item id.", src, "items", iid))
        reserved = {"respondent_id", "country", "iteration", "group", "weight", "stratum", "cluster"}
        dnames = [d.name for d in self.demographics]
        for dn in sorted({d for d in dnames if dnames.count(d) > 1}):
            probs.append(_problem("demographic_duplicate", "Duplicate demographic name.", src, "demographics", dn))
        for dn in dnames:
            if dn in reserved:
                probs.append(_problem("demographic_reserved", "Demographic name collides with a reserved column name.",
                                      src, "demographics", dn))
        reserved |= set(dnames)
        for iid in iids:
            if iid in reserved:
                probs.append(_problem("item_reserved", "Item id collides with a reserved or demographic column name.", src, "items", iid))
        key_ids = {f.id for f in self.factors if f.kind == "key_factor"}
        for f in self.factors:
            if f.kind not in ("key_factor", "index"):
                probs.append(_problem("factor_kind", "Factor kind must be 'key_factor' or 'index'.", src, f"factors.{f.id}.kind", f.kind))
        for it in self.items:
            if it.factor not in key_ids:
                probs.append(_problem("item_factor_unknown", f"Item {it.id} names an unknown key factor.", src, f"items.{it.id}.factor", it.factor))
            if not it.groups:
                probs.append(_problem("item_groups_empty", f"Item {it.id} is asked of no group.", src, f"items.{it.id}.groups", []))
            for g in it.groups:
                if g not in group_ids:
                    probs.append(_problem("item_group_unknown", f"Item {it.id} names an unknown group.", src, f"items.{it.id}.groups", g))
        for f in self.factors:
            if f.kind == "key_factor":
                if not any(it.factor == f.id for it in self.items):
                    probs.append(_problem("factor_empty", f"Key factor {f.id} has no item.", src, f"factors.{f.id}", f.id))
            elif f.kind == "index":
                if not f.items:
                    probs.append(_problem("factor_empty", f"Index {f.id} has no item.", src, f"indices.{f.id}.items", []))
                for iid in sorted({i for i in f.items if list(f.items).count(i) > 1}):
                    probs.append(_problem("index_item_duplicate", f"Index {f.id} lists an item twice.", src, f"indices.{f.id}.items", iid))
                for iid in f.items:
                    if iid not in iids:
                        probs.append(_problem("index_item_unknown", f"Index {f.id} names an unknown item.", src, f"indices.{f.id}.items", iid))
        for d in self.demographics:
            for g in d.groups:
                if g not in group_ids:
                    probs.append(_problem("demographic_group_unknown", f"Demographic {d.name} names an unknown group.", src, f"demographics.{d.name}.groups", g))
        probs += self._column_problems(set(reserved) | set(iids))
        if probs:
            raise DataError(f"The instrument specification {self.name!r} is invalid ({len(probs)} problems).", probs)

    def _column_problems(self, targets: set[str]) -> list[Problem]:
        """``columns:`` entries must name a respondent-table column, each file column used once."""
        probs = []
        seen: dict[str, str] = {}
        for c in self.columns:
            if c.target not in targets:
                probs.append(_problem("columns_unknown_target",
                                      f"columns: {c.target!r} is neither a key column ({', '.join(COLUMN_TARGETS)}), "
                                      f"a demographic nor an item{_did_you_mean(c.target, targets)}.",
                                      self.source, f"columns.{c.target}", c.target))
            src = c.column or c.column_or_value
            if src is not None and src in seen:
                probs.append(_problem("columns_duplicate_source",
                                      f"The file column {src!r} is mapped to both {seen[src]!r} and {c.target!r}.",
                                      self.source, f"columns.{c.target}", src))
            elif src is not None:
                seen[src] = c.target
        return probs

    # ------------------------------------------------------------------ accessors
    @property
    def key_factors(self) -> tuple[Factor, ...]:
        """The key factors (not the cross-cutting indices), in order."""
        return tuple(f for f in self.factors if f.kind == "key_factor")

    @property
    def indices(self) -> tuple[Factor, ...]:
        """The cross-cutting indices."""
        return tuple(f for f in self.factors if f.kind == "index")

    @property
    def factor_ids(self) -> tuple[str, ...]:
        """Ids of all factors and indices, in reporting order."""
        return tuple(f.id for f in self.factors)

    @property
    def group_ids(self) -> tuple[str, ...]:
        """Ids of the respondent groups."""
        return tuple(g.id for g in self.groups)

    @property
    def item_ids(self) -> tuple[str, ...]:
        """Ids of all items."""
        return tuple(i.id for i in self.items)

    @cached_property
    def _item_map(self) -> dict[str, Item]:
        return {i.id: i for i in self.items}

    def item(self, item_id: str) -> Item:
        """Return the item with this id (``KeyError`` names it when unknown)."""
        try:
            return self._item_map[item_id]
        except KeyError:
            raise _unknown("item", item_id, self.name, self.item_ids) from None

    def factor(self, factor_id: str) -> Factor:
        """Return the factor or index with this id."""
        for f in self.factors:
            if f.id == factor_id:
                return f
        raise _unknown("factor", factor_id, self.name, self.factor_ids)

    def items_for(self, group: str) -> tuple[str, ...]:
        """Item ids asked of a respondent group, in instrument order."""
        if group not in self.group_ids:
            raise _unknown("group", group, self.name, self.group_ids)
        return tuple(i.id for i in self.items if group in i.groups)

    def factor_items(self, factor: str, group: str | None = None) -> tuple[str, ...]:
        """Item ids of a key factor or index, optionally restricted to those a group is asked."""
        f = self.factor(factor)
        ids = f.items if f.kind == "index" else tuple(i.id for i in self.items if i.factor == factor)
        if group is not None:
            if group not in self.group_ids:
                raise _unknown("group", group, self.name, self.group_ids)
            ids = tuple(i for i in ids if group in self._item_map[i].groups)
        return ids

    def reverse_items(self) -> tuple[str, ...]:
        """Ids of reverse-keyed items."""
        return tuple(i.id for i in self.items if i.reverse)

    def demographics_for(self, group: str) -> tuple[Demographic, ...]:
        """Demographic fields asked of a group (a field that names no group is asked of every group,
        as the loader treats it)."""
        return tuple(d for d in self.demographics if not d.groups or group in d.groups)

    def model_syntax(self, group: str, factors: Iterable[str] | None = None) -> str:
        """lavaan-style CFA syntax of the key factors for one group (factors correlated by default).

        Examples
        --------
        >>> import cips_stats as cs
        >>> print(cs.Instrument.default().model_syntax("private", factors=["leadership"]))
        leadership =~ LC1 + LC2 + LC3 + LC6
        """
        fids = list(factors) if factors is not None else [f.id for f in self.key_factors]
        lines = []
        for fid in fids:
            items = self.factor_items(fid, group=group)
            if items:
                lines.append(f"{fid} =~ " + " + ".join(items))
        return "\n".join(lines)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Return the specification as a YAML-friendly dictionary."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "scale": self.scale.to_dict(),
            "groups": [{"id": g.id, "label": g.label} for g in self.groups],
            "demographics": [
                {"name": d.name, "label": d.label, "categories": list(d.categories), "groups": list(d.groups)}
                for d in self.demographics
            ],
            "factors": [{"id": f.id, "label": f.label, **({"description": f.description} if f.description else {})}
                        for f in self.key_factors],
            "indices": [{"id": f.id, "label": f.label, "description": f.description, "items": list(f.items)}
                        for f in self.indices],
            "items": [
                {"id": i.id, "factor": i.factor, "groups": list(i.groups), "text": i.text,
                 **({"reverse": True} if i.reverse else {})}
                for i in self.items
            ],
            **({"columns": {c.target: c.to_dict() for c in self.columns}} if self.columns else {}),
        }

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical specification (first 16 hex digits)."""
        canon = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=True)
        return "sha256:" + hashlib.sha256(canon.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], source: str | None = None) -> "Instrument":
        """Build an instrument from a dictionary (as read from YAML); problems raise ``DataError``.

        Unknown keys (e.g. a misspelt ``revers: true``) are an error naming the key, its place
        (and its line, when read from YAML) and the closest known key.
        """
        src = source or "<dict>"
        if not isinstance(spec, Mapping):
            raise DataError(f"The instrument specification in {src} must be a mapping.",
                            [_problem("spec_type", "Top level must be a mapping.", src, None, type(spec).__name__)])
        probs = [_problem("spec_missing_key", f"Required key {key!r} is missing.", src, key)
                 for key in ("name", "scale", "groups", "factors", "items") if key not in spec]
        if probs:
            raise DataError(f"The instrument specification in {src} is incomplete.", probs)
        probs = _schema_problems(spec, src)
        if probs:
            raise DataError(f"The instrument specification in {src} has {len(probs)} unknown "
                            f"key{'s' if len(probs) != 1 else ''}.", probs)
        try:
            points = spec["scale"].get("points", 5)
            if isinstance(points, bool) or not isinstance(points, int) or not 2 <= points <= MAX_SCALE_POINTS:
                raise DataError(f"The instrument specification in {src} is invalid.",
                                [_problem("scale_points", f"The scale needs an integer number of points from 2 to "
                                          f"{MAX_SCALE_POINTS}.", src, "scale.points", _short(points))])
            parts = _parts_from_dict(spec, points)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"The instrument specification in {src} is malformed: {exc}.",
                            [_problem("spec_malformed", str(exc), src)]) from exc
        return cls(name=str(spec["name"]), version=str(spec.get("version", "1")),
                   description=str(spec.get("description", "")).strip(), source=source, **parts)

    @classmethod
    def from_yaml(cls, path_or_text: str | Path) -> "Instrument":
        """Read an instrument from a YAML file (or a YAML string containing a newline).

        The file must be UTF-8 (a byte-order mark is accepted); duplicate keys, aliases
        (``&anchor``/``*alias``) and unknown keys are errors naming the line.

        Examples
        --------
        >>> import cips_stats as cs
        >>> try:
        ...     cs.Instrument.from_yaml("name: x\\nname: y\\n")
        ... except cs.DataError as e:
        ...     print(e.problems[0].message)
        Line 2: the key 'name' appears twice in one mapping (first on line 1); remove one.
        """
        text = str(path_or_text)
        if "\n" in text:
            source, content = "<yaml>", text
        else:
            source = str(path_or_text)
            try:
                size = Path(path_or_text).stat().st_size
                if size > 4 * _MAX_INSTRUMENT_CHARS:
                    msg = (f"The file holds {size:,} bytes, more than an instrument needs "
                           f"({4 * _MAX_INSTRUMENT_CHARS:,} at most): is it the right file?")
                    raise DataError(f"The instrument file {source} is too large.",
                                    [_problem("yaml_too_large", msg, source, None, size)])
                data = Path(path_or_text).read_bytes()
            except OSError as exc:
                raise DataError(f"Cannot read the instrument file {source}: {exc}.",
                                [_problem("file_unreadable", str(exc), source)]) from exc
            content = _decode_yaml(data, source)
        return cls.from_dict(_safe_yaml(content, source), source=source)

    def to_yaml(self, path: str | Path | None = None) -> str:
        """Write the specification as YAML; returns the text (and writes ``path`` when given)."""
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=110)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def default(cls, points: int = 5) -> "Instrument":
        """The CIPS-like default instrument (10 RAD key factors, officials and private sector).

        Parameters
        ----------
        points : {4, 5}
            Points of the agreement scale. With 4 points there is no middle
            category and the favourable codes are (3, 4).
        """
        text = resources.files("cips_stats.instruments").joinpath("cips_default.yaml").read_text(encoding="utf-8")
        inst = cls.from_yaml(text)
        inst = replace(inst, source="cips_stats/instruments/cips_default.yaml")
        if points == 5:
            return inst
        if points not in _DEFAULT_LABELS:
            raise DataError("The default instrument supports 4- or 5-point scales.",
                            [_problem("scale_points", "points must be 4 or 5.", None, "points", points)])
        scale = Scale(points=points, labels=_DEFAULT_LABELS[points], favourable=(points - 1, points),
                      missing=dict(inst.scale.missing))
        return replace(inst, scale=scale, name=f"{inst.name}-{points}pt")


# ====================================================================================== reading YAML
#: Allowed keys of each part of a specification (``columns:`` entries are checked by ColumnSpec).
SCHEMA: dict[str, tuple[str, ...]] = {
    "": ("name", "version", "description", "scale", "groups", "demographics", "factors", "indices", "items",
         "columns"),
    "scale": ("points", "labels", "favourable", "missing"),
    "groups": ("id", "label"),
    "demographics": ("name", "label", "categories", "groups"),
    "factors": ("id", "label", "description"),
    "indices": ("id", "label", "description", "items"),
    "items": ("id", "factor", "groups", "text", "reverse"),
}


class _Located(dict):
    """A YAML mapping that remembers the line (1-based) of each key."""

    lines: dict


def _line_of(mapping: Any, key: Any) -> str:
    lines = getattr(mapping, "lines", None)
    return f"Line {lines[key]}: " if lines and key in lines else ""


def _schema_problems(spec: Mapping[str, Any], src: str) -> list[Problem]:
    """Every key the schema does not know, with its place, line and the closest known key."""
    probs = []

    def check(mapping: Any, part: str, where: str) -> None:
        if not isinstance(mapping, Mapping):
            return
        known = SCHEMA[part]
        for key in mapping:
            if key not in known:
                probs.append(_problem("spec_unknown_key",
                                      f"{_line_of(mapping, key)}unknown key {key!r} in {where or 'the top level'}"
                                      f"{_did_you_mean(str(key), known)}; known keys: {', '.join(known)}.",
                                      src, f"{where}.{key}" if where else str(key), str(key)))

    check(spec, "", "")
    check(spec.get("scale"), "scale", "scale")
    for part in ("groups", "demographics", "factors", "indices", "items"):
        entries = spec.get(part) or []
        if isinstance(entries, list):
            for k, entry in enumerate(entries):
                name = entry.get("id", entry.get("name", k)) if isinstance(entry, Mapping) else k
                check(entry, part, f"{part}[{name}]")
    return probs


def _parts_from_dict(spec: Mapping[str, Any], points: int) -> dict[str, Any]:
    """The scale, groups, demographics, factors, items and columns of a checked specification."""
    s = spec["scale"]
    missing = {int(k): str(v) for k, v in (s.get("missing") or {}).items()}
    if any(str(k).strip() != str(int(k)) for k in (s.get("missing") or {})):
        raise ValueError("scale.missing codes must be integers")
    labels = tuple(s.get("labels") or _DEFAULT_LABELS.get(points, tuple(str(i) for i in range(1, points + 1))))
    fav = s.get("favourable")
    if fav is None:
        fav = tuple(range(points - 1, points + 1)) if points >= 4 else (points,)
    scale = Scale(points=points, labels=tuple(str(x) for x in labels), favourable=tuple(int(c) for c in fav),
                  missing=missing)
    groups = tuple(Group(id=str(g["id"]), label=str(g.get("label", ""))) for g in spec["groups"])
    demos = tuple(
        Demographic(name=str(d["name"]), label=str(d.get("label", "")),
                    categories=tuple(str(c) for c in d.get("categories", ())),
                    groups=_as_tuple(d.get("groups", [g.id for g in groups])))
        for d in spec.get("demographics", []) or []
    )
    factors = [Factor(id=str(f["id"]), label=str(f.get("label", f["id"])), kind="key_factor",
                      description=str(f.get("description", ""))) for f in spec["factors"]]
    factors += [Factor(id=str(f["id"]), label=str(f.get("label", f["id"])), kind="index",
                       items=_as_tuple(f.get("items", ())), description=str(f.get("description", "")))
                for f in spec.get("indices", []) or []]
    items = tuple(
        Item(id=str(i["id"]), factor=str(i["factor"]), groups=_as_tuple(i.get("groups", [g.id for g in groups])),
             text=str(i.get("text", "")), reverse=_as_bool(i.get("reverse", False), f"items.{i.get('id')}.reverse"))
        for i in spec["items"]
    )
    return {"scale": scale, "groups": groups, "demographics": demos, "factors": tuple(factors), "items": items,
            "columns": parse_columns(spec.get("columns"))}


def _decode_yaml(data: bytes, source: str) -> str:
    """UTF-8 text of an instrument file; any other encoding is an error naming the byte and line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        msg = (f"The byte 0x{data[exc.start]:02X} at line {line}, column {col} is not valid UTF-8: save the "
               f"instrument file as UTF-8 (it looks like Latin-1 or Windows-1252).")
        raise DataError(f"Cannot read the instrument file {source}: {msg}",
                        [_problem("file_encoding", msg, source, None, f"0x{data[exc.start]:02X}")]) from None


#: Largest instrument file read (characters; bytes: four times that): the packaged CIPS instrument is
#: about 9,000; a larger file is not an instrument, and parsing it would take long.
_MAX_INSTRUMENT_CHARS = 2_000_000
#: Deepest nesting of an instrument file (an instrument needs 5: top -> items -> item -> groups -> value).
_MAX_YAML_DEPTH = 16


def _safe_yaml(content: str, source: str) -> Any:
    """``yaml.safe_load`` that refuses aliases, duplicate keys, huge and deeply nested files and records
    each key's line."""
    import yaml

    if len(content) > _MAX_INSTRUMENT_CHARS:
        msg = (f"The file holds {len(content):,} characters, more than an instrument needs "
               f"({_MAX_INSTRUMENT_CHARS:,} at most): is it the right file?")
        raise DataError(f"The instrument file {source} is too large.",
                        [_problem("yaml_too_large", msg, source, None, len(content))])

    class Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                ev = self.peek_event()
                msg = (f"Line {ev.start_mark.line + 1}: YAML aliases (*{ev.anchor}) are not allowed in an "
                       f"instrument file; write the values out.")
                raise DataError(f"The instrument file {source} uses a YAML alias.",
                                [_problem("yaml_alias", msg, source, None, f"*{ev.anchor}")])
            self.depth += 1
            if self.depth > _MAX_YAML_DEPTH:
                line = self.peek_event().start_mark.line + 1
                msg = (f"Line {line}: values nested more than {_MAX_YAML_DEPTH} levels deep; an instrument "
                       f"needs five.")
                raise DataError(f"The instrument file {source} is nested too deeply.",
                                [_problem("yaml_too_deep", msg, source)])
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    def mapping(loader: Any, node: Any) -> _Located:
        out = _Located()
        out.lines = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                hash(key)
            except TypeError:
                raise DataError(f"The instrument file {source} has a key that is not text.",
                                [_problem("yaml_syntax", f"Line {line}: a mapping key must be text.", source)]) from None
            if key in out:
                msg = (f"Line {line}: the key {key!r} appears twice in one mapping (first on line "
                       f"{out.lines[key]}); remove one.")
                raise DataError(f"The instrument file {source} repeats a key.",
                                [_problem("yaml_duplicate_key", msg, source, str(key), str(key))])
            out[key] = loader.construct_object(value_node, deep=True)
            out.lines[key] = line
        return out

    Loader.add_constructor("tag:yaml.org,2002:map", mapping)
    try:
        return yaml.load(content, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise DataError(f"The instrument file {source} is not valid YAML: {exc}.",
                        [_problem("yaml_syntax", str(exc), source)]) from exc
