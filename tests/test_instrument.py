"""Tests of cips_stats.instrument: the default instrument, YAML round trip, hash, spec validation."""

from __future__ import annotations

import copy

import pytest

import cips_stats as cs
from cips_stats.instrument import Demographic, Factor, Group, Instrument, Item, Scale

INST = cs.Instrument.default()


def base_spec() -> dict:
    """A small valid specification (as read from YAML)."""
    return {
        "name": "tiny",
        "version": "2",
        "scale": {"points": 5, "missing": {8: "dont_know", 9: "refused"}},
        "groups": [{"id": "officials"}, {"id": "private"}],
        "demographics": [{"name": "gender", "categories": ["female", "male"], "groups": ["officials"]}],
        "factors": [{"id": "leadership", "label": "Leadership"}, {"id": "audit"}],
        "indices": [{"id": "wb", "label": "Whistleblowing", "items": ["L1", "A1"]}],
        "items": [
            {"id": "L1", "factor": "leadership", "groups": ["officials", "private"]},
            {"id": "L2", "factor": "leadership", "groups": ["officials"], "reverse": True},
            {"id": "A1", "factor": "audit", "groups": ["private"]},
        ],
    }


def rules_of(spec: dict) -> list[tuple[str, object]]:
    with pytest.raises(cs.DataError) as e:
        Instrument.from_dict(spec)
    return [(p.rule, p.value) for p in e.value.problems]


# ------------------------------------------------------------------------ the default instrument
def test_default_structure():
    assert [f.id for f in INST.key_factors] == ["leadership", "regulatory", "transparency", "automation", "reform",
                                                "audit", "conduct", "hrm", "morale", "private_sector"]
    assert INST.group_ids == ("officials", "private")
    assert len(INST.items_for("officials")) == 50 and len(INST.items_for("private")) == 40
    assert INST.scale.points == 5 and INST.scale.favourable == (4, 5)
    assert dict(INST.scale.missing) == {8: "dont_know", 9: "refused"}
    for f in INST.key_factors:
        assert len(INST.factor_items(f.id, group="officials")) == 5
        assert len(INST.factor_items(f.id, group="private")) == 4
    assert INST.indices[0].id == "whistleblower"
    assert set(INST.factor_items("whistleblower")) <= set(INST.item_ids)
    assert all(INST.item(i).reverse for i in INST.reverse_items()) and len(INST.reverse_items()) >= 1


@pytest.mark.parametrize("points", [4, 5])
def test_default_points(points):
    inst = cs.Instrument.default(points=points)
    assert inst.scale.points == points and len(inst.scale.labels) == points
    assert inst.scale.favourable == (points - 1, points)
    assert inst.scale.codes == tuple(range(1, points + 1))
    assert inst.item_ids == INST.item_ids
    assert (inst.hash == INST.hash) == (points == 5)
    if points == 4:
        assert "Neither agree nor disagree" not in inst.scale.labels


def test_default_other_points_rejected():
    with pytest.raises(cs.DataError) as e:
        cs.Instrument.default(points=7)
    assert e.value.problems[0].rule == "scale_points"


def test_accessors_and_syntax():
    assert INST.factor_items("leadership", group="private") == ("LC1", "LC2", "LC3", "LC6")
    assert INST.model_syntax("private", factors=["leadership"]) == "leadership =~ LC1 + LC2 + LC3 + LC6"
    assert INST.model_syntax("officials").count("=~") == 10
    assert [d.name for d in INST.demographics_for("private")] == ["gender", "experience", "business_type"]
    with pytest.raises(KeyError, match="Unknown item"):
        INST.item("ZZ9")
    with pytest.raises(KeyError, match="Unknown group"):
        INST.items_for("public")
    with pytest.raises(KeyError, match="Unknown factor"):
        INST.factor_items("integrity")


# ------------------------------------------------------------------------ YAML round trip and hash
@pytest.mark.parametrize("points", [4, 5])
def test_yaml_round_trip(tmp_path, points):
    inst = cs.Instrument.default(points=points)
    path = tmp_path / "inst.yaml"
    text = inst.to_yaml(path)
    assert path.read_text(encoding="utf-8") == text
    back = Instrument.from_yaml(path)
    assert back == inst and back.hash == inst.hash
    assert back.source == str(path)
    assert Instrument.from_yaml(text) == inst
    assert back.to_dict() == inst.to_dict()


def test_round_trip_of_small_spec_keeps_everything():
    inst = Instrument.from_dict(base_spec())
    back = Instrument.from_yaml(inst.to_yaml())
    assert back == inst
    assert back.item("L2").reverse and not back.item("L1").reverse
    assert back.factor("wb").items == ("L1", "A1") and back.factor("wb").kind == "index"
    assert back.demographics == (Demographic(name="gender", label="", categories=("female", "male"),
                                             groups=("officials",)),)


def test_hash_stable_and_sensitive():
    a, b = cs.Instrument.default(), cs.Instrument.default()
    assert a.hash == b.hash and a.hash.startswith("sha256:") and len(a.hash) == len("sha256:") + 16
    # the hash is of the specification, not of where it was read from
    spec = base_spec()
    assert Instrument.from_dict(spec, source="x.yaml").hash == Instrument.from_dict(spec, source="y.yaml").hash
    changed = copy.deepcopy(spec)
    changed["items"][0]["reverse"] = True
    assert Instrument.from_dict(changed).hash != Instrument.from_dict(spec).hash
    reordered = copy.deepcopy(spec)
    reordered["items"] = [spec["items"][i] for i in (0, 1, 2)]
    assert Instrument.from_dict(reordered).hash == Instrument.from_dict(spec).hash


def test_hash_known_value_is_deterministic_across_processes():
    import subprocess
    import sys

    code = "import cips_stats as cs; print(cs.Instrument.default().hash)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout.strip()
    assert out == INST.hash


# ------------------------------------------------------------------------ spec validation rules
def test_unknown_factor():
    spec = base_spec()
    spec["items"][0]["factor"] = "integrity"
    assert ("item_factor_unknown", "integrity") in rules_of(spec)


def test_item_pointing_to_an_index_is_unknown_factor():
    spec = base_spec()
    spec["items"][0]["factor"] = "wb"
    assert rules_of(spec) == [("item_factor_unknown", "wb")]


def test_duplicate_item_id():
    spec = base_spec()
    spec["items"].append({"id": "L1", "factor": "audit", "groups": ["private"]})
    assert rules_of(spec) == [("item_duplicate", "L1")]


def test_duplicate_factor_and_group_ids():
    spec = base_spec()
    spec["factors"].append({"id": "audit"})
    spec["groups"].append({"id": "private"})
    assert sorted(rules_of(spec)) == [("factor_duplicate", "audit"), ("group_duplicate", "private")]


def test_empty_factor():
    spec = base_spec()
    spec["factors"].append({"id": "morale"})
    assert rules_of(spec) == [("factor_empty", "morale")]


def test_empty_index():
    spec = base_spec()
    spec["indices"][0]["items"] = []
    assert rules_of(spec) == [("factor_empty", [])]


@pytest.mark.parametrize("scale, rule", [
    ({"points": 1}, "scale_points"),
    ({"points": "five"}, "scale_points"),
    ({"points": 1_000_000_000}, "scale_points"),
    ({"points": 101}, "scale_points"),
    ({"points": 5, "labels": ["a", "b"]}, "scale_labels"),
    ({"points": 5, "favourable": [5, 6]}, "scale_favourable"),
    ({"points": 5, "favourable": []}, "scale_favourable"),
    ({"points": 5, "missing": {3: "dont_know"}}, "scale_missing"),
])
def test_bad_scale(scale, rule):
    spec = base_spec()
    spec["scale"] = scale
    assert [r for r, _ in rules_of(spec)] == [rule]


def test_unknown_group_in_item():
    spec = base_spec()
    spec["items"][2]["groups"] = ["private", "public"]
    assert rules_of(spec) == [("item_group_unknown", "public")]


def test_item_without_group():
    spec = base_spec()
    spec["items"][2]["groups"] = []
    assert rules_of(spec) == [("item_groups_empty", [])]


def test_index_naming_unknown_item():
    spec = base_spec()
    spec["indices"][0]["items"] = ["L1", "Q7"]
    assert rules_of(spec) == [("index_item_unknown", "Q7")]


def test_item_id_reserved():
    spec = base_spec()
    spec["items"][2]["id"] = "weight"
    spec["indices"][0]["items"] = ["L1"]
    assert rules_of(spec) == [("item_reserved", "weight")]


def test_demographic_unknown_group_and_bad_kind():
    spec = base_spec()
    spec["demographics"][0]["groups"] = ["customs"]
    assert rules_of(spec) == [("demographic_group_unknown", "customs")]
    with pytest.raises(cs.DataError) as e:
        Instrument(name="x", scale=Scale(), groups=(Group("g"),),
                   factors=(Factor("f"), Factor("i", kind="composite", items=("a",))),
                   items=(Item("a", "f", ("g",)),))
    assert [p.rule for p in e.value.problems] == ["factor_kind"]


def test_every_problem_listed_at_once():
    spec = base_spec()
    spec["items"][0]["factor"] = "integrity"
    spec["items"][1]["groups"] = ["public"]
    spec["indices"][0]["items"] = ["Q7"]
    got = {r for r, _ in rules_of(spec)}
    assert {"item_factor_unknown", "item_group_unknown", "index_item_unknown"} <= got


def test_missing_keys_and_bad_yaml(tmp_path):
    spec = base_spec()
    del spec["items"], spec["groups"]
    assert sorted(r for r, _ in rules_of(spec)) == ["spec_missing_key", "spec_missing_key"]
    with pytest.raises(cs.DataError) as e:
        Instrument.from_yaml("name: x\nscale: [unclosed\n")
    assert e.value.problems[0].rule == "yaml_syntax"
    with pytest.raises(cs.DataError) as e:
        Instrument.from_yaml(tmp_path / "absent.yaml")
    assert e.value.problems[0].rule == "file_unreadable"
    with pytest.raises(cs.DataError) as e:
        Instrument.from_dict(["not", "a", "mapping"])
    assert e.value.problems[0].rule == "spec_type"


def test_instrument_errors_are_value_errors():
    spec = base_spec()
    spec["items"][0]["factor"] = "integrity"
    with pytest.raises(ValueError):
        Instrument.from_dict(spec)


# ------------------------------------------------------------------------ regression tests
# Each guards a real defect of instrument.py found while writing these tests (since fixed).
def test_bug_reverse_given_as_text_false():
    spec = base_spec()
    spec["items"][0]["reverse"] = "false"
    try:
        inst = Instrument.from_dict(spec)
    except cs.DataError:
        return  # rejecting the text is also correct
    assert inst.item("L1").reverse is False


def test_bug_item_groups_given_as_a_string():
    spec = base_spec()
    spec["items"][2]["groups"] = "private"
    try:
        inst = Instrument.from_dict(spec)
    except cs.DataError as e:
        assert [p.value for p in e.problems] == ["private"]
        return
    assert inst.item("A1").groups == ("private",)


def test_bug_duplicate_demographic_name():
    spec = base_spec()
    spec["demographics"].append({"name": "gender"})
    assert "demographic_duplicate" in {r for r, _ in rules_of(spec)}


def test_bug_demographic_reserved_name():
    spec = base_spec()
    spec["demographics"][0]["name"] = "weight"
    rules_of(spec)


def test_bug_index_duplicate_items():
    spec = base_spec()
    spec["indices"][0]["items"] = ["L1", "L1"]
    rules_of(spec)


def test_bug_scale_missing_code_not_integer_raises_data_error():
    with pytest.raises(cs.DataError):
        Instrument(name="x", scale=Scale(missing={"x": "dont_know"}), groups=(Group("g"),),
                   factors=(Factor("f"),), items=(Item("a", "f", ("g",)),))


def test_instrument_is_hashable_and_hash_follows_content():
    a = Instrument.default()
    b = Instrument.default()
    assert hash(a) == hash(b)
    assert {a, b} == {a}
    assert hash(Instrument.default(points=4)) != hash(a)


def test_demographic_without_groups_is_asked_of_every_group():
    # Regression: demographics_for() ignored a field declared with no groups, while the loader treats
    # it as asked of every group.
    inst = Instrument.default()
    import dataclasses

    extra = Demographic(name="region", categories=("north", "south"))
    inst2 = dataclasses.replace(inst, demographics=inst.demographics + (extra,))
    for g in inst2.group_ids:
        assert "region" in [d.name for d in inst2.demographics_for(g)]
    assert "leadership" not in [d.name for d in inst2.demographics_for("private")]


# ------------------------------------------------------------------------ strict YAML and the column mapping (issue 14)
def test_unknown_key_names_line_place_and_closest_key():
    text = INST.to_yaml().replace("reverse: true", "revers: true", 1)
    line = text.splitlines().index(next(x for x in text.splitlines() if "revers: true" in x)) + 1
    with pytest.raises(cs.DataError) as e:
        Instrument.from_yaml(text)
    item = next(i.id for i in INST.items if i.reverse)
    assert [(p.rule, p.column, p.message) for p in e.value.problems] == [
        ("spec_unknown_key", f"items[{item}].revers",
         f"Line {line}: unknown key 'revers' in items[{item}] (did you mean 'reverse'?); known keys: id, factor, "
         f"groups, text, reverse.")]
    spec = base_spec()
    spec["scale"]["pionts"] = 5
    assert rules_of(spec) == [("spec_unknown_key", "pionts")]


def test_unknown_key_in_a_file_names_the_file_line_and_closest_key(tmp_path):
    p = tmp_path / "misspelt.yaml"
    text = INST.to_yaml().replace("points: 5", "pionts: 5", 1)
    p.write_text(text, encoding="utf-8")
    line = text.splitlines().index("  pionts: 5") + 1
    with pytest.raises(cs.DataError) as e:
        Instrument.from_yaml(p)
    assert [(q.rule, q.file, q.column, q.message) for q in e.value.problems] == [
        ("spec_unknown_key", str(p), "scale.pionts",
         f"Line {line}: unknown key 'pionts' in scale (did you mean 'points'?); known keys: points, labels, "
         f"favourable, missing.")]


def test_duplicate_key_names_both_lines(tmp_path):
    p = tmp_path / "dup.yaml"
    p.write_text("name: a\nversion: '1'\nname: b\n", encoding="utf-8")
    with pytest.raises(cs.DataError) as e:
        Instrument.from_yaml(p)
    assert [(q.rule, q.file, q.column, q.message) for q in e.value.problems] == [
        ("yaml_duplicate_key", str(p), "name",
         "Line 3: the key 'name' appears twice in one mapping (first on line 1); remove one.")]


def test_aliases_and_latin1_are_refused(tmp_path):
    with pytest.raises(cs.DataError) as e:
        Instrument.from_yaml("base: &b {id: g}\ngroups: [*b]\n")
    assert e.value.problems[0].rule == "yaml_alias"
    p = tmp_path / "latin1.yaml"
    p.write_bytes("name: é\n".encode("latin-1"))
    with pytest.raises(cs.DataError) as e:
        Instrument.from_yaml(p)
    assert [(q.rule, q.value, q.message) for q in e.value.problems] == [
        ("file_encoding", "0xE9", "The byte 0xE9 at line 1, column 7 is not valid UTF-8: save the instrument file "
                                  "as UTF-8 (it looks like Latin-1 or Windows-1252).")]


def test_columns_mapping_round_trips_and_is_checked():
    spec = base_spec()
    spec["columns"] = {"respondent_id": "id", "weight": "pondération", "country": {"value": "NL"},
                       "iteration": {"column": "wave", "labels": {"2019-20": 1}}}
    inst = Instrument.from_dict(spec)
    assert [c.target for c in inst.columns] == ["respondent_id", "weight", "country", "iteration"]
    again = Instrument.from_yaml(inst.to_yaml())
    assert again.columns == inst.columns and again.hash == inst.hash != Instrument.from_dict(base_spec()).hash
    spec["columns"] = {"contry": "pays"}
    assert rules_of(spec) == [("columns_unknown_target", "contry")]
    spec["columns"] = {"country": "x", "group": "x"}
    assert rules_of(spec) == [("columns_duplicate_source", "x")]
    for bad in ({"country": {"value": "NL", "column": "c"}}, {"country": {"generate": True}},
                {"weight": {"column": "w", "labels": {"a": 1}}}, {"iteration": {"column": "w", "labels": {"a": 0}}}):
        spec["columns"] = bad
        assert [r for r, _ in rules_of(spec)] == ["columns_invalid"], bad
