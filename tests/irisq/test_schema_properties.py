"""Properties of the row schema and the model reference, in Python and from JSON."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from irisq.schema import (
    CHAMPION,
    FEATURES,
    MAX_CM,
    MAX_ROWS,
    FeatureRow,
    PredictionRequest,
    is_version,
)
from tests.support.csv_files import PROPERTY

VALID = st.floats(min_value=0, max_value=MAX_CM, exclude_min=True)
ROWS = st.fixed_dictionaries({f: VALID for f in FEATURES})
GOOD_ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}

# What a measurement must never be, in Python: out of range, not finite, not a float at all.
BAD_PYTHON = st.one_of(
    st.floats(max_value=0),
    st.floats(min_value=MAX_CM, exclude_min=True),
    st.sampled_from([math.nan, -math.nan, math.inf, -math.inf, True, False, None]),
    st.integers().filter(lambda n: not 0 < n <= MAX_CM),
    st.text(),
    st.from_regex(r"\A[+-]?[0-9]{1,3}(\.[0-9]{1,3})?\Z"),  # strict: even "5.1" is refused
    st.lists(VALID, max_size=2),
    st.dictionaries(st.text(max_size=3), VALID, max_size=2),
)

# The same as JSON text. Integers stay under 4,300 digits: longer ones are refused by the
# JSON parser itself (`json_invalid`, on the whole body, not a field).
BAD_JSON = st.one_of(
    st.floats(max_value=0, allow_nan=False).map(json.dumps),
    st.floats(min_value=MAX_CM, exclude_min=True, allow_infinity=False).map(json.dumps),
    st.integers(min_value=-(10**4000), max_value=0).map(str),
    st.integers(min_value=101, max_value=10**4000).map(str),
    st.integers(2, 1000).map(lambda n: f"{n}e{n}"),  # too large as floats, or infinite
    st.integers(324, 1000).map(lambda n: f"1e-{n}"),  # rounds to 0
    st.sampled_from(["NaN", "Infinity", "-Infinity", "true", "false", "null", "-0", "0.0"]),
    st.sampled_from(["[]", "{}", "[5.1]", '{"cm": 5.1}']),
    st.text().map(json.dumps),
    VALID.map(lambda v: json.dumps(str(v))),  # a number in a string
)


def refused_on(error: ValidationError) -> set[tuple[int | str, ...]]:
    return {tuple(e["loc"]) for e in error.errors()}


@PROPERTY
@given(ROWS)
def test_a_valid_row_round_trips_through_python_and_json(values: dict[str, float]) -> None:
    row = FeatureRow.model_validate(values)

    assert row.as_list() == [values[f] for f in FEATURES]
    assert FeatureRow.model_validate(row.model_dump()) == row
    assert FeatureRow.model_validate_json(row.model_dump_json()) == row
    assert FeatureRow.model_validate_json(json.dumps(values)) == row


@PROPERTY
@given(st.sampled_from(FEATURES), st.integers(1, int(MAX_CM)))
def test_whole_centimetres_are_accepted_as_numbers(feature: str, value: int) -> None:
    from_python = FeatureRow.model_validate({**GOOD_ROW, feature: value})
    from_json = FeatureRow.model_validate_json(json.dumps({**GOOD_ROW, feature: value}))

    assert getattr(from_python, feature) == getattr(from_json, feature) == float(value)


@PROPERTY
@given(st.sampled_from(FEATURES), BAD_PYTHON)
def test_a_bad_value_is_refused_naming_its_field(feature: str, value: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        FeatureRow.model_validate({**GOOD_ROW, feature: value})

    assert refused_on(refused.value) == {(feature,)}


@PROPERTY
@given(st.sampled_from(FEATURES), BAD_JSON)
@example("sepal_length", "1" + "0" * 400).via("a 401-digit integer: infinite as a float")
def test_a_bad_json_value_is_refused_naming_its_field(feature: str, token: str) -> None:
    body = json.dumps({**GOOD_ROW, feature: "@"}).replace('"@"', token)

    with pytest.raises(ValidationError) as refused:
        FeatureRow.model_validate_json(body)

    assert refused_on(refused.value) == {(feature,)}


@PROPERTY
@given(
    st.sets(st.sampled_from(FEATURES), min_size=1),
    st.dictionaries(st.text(max_size=8).filter(lambda k: k not in FEATURES), VALID, max_size=2),
)
def test_missing_and_unknown_fields_are_named(missing: set[str], unknown: dict[str, float]) -> None:
    given_values = {f: v for f, v in GOOD_ROW.items() if f not in missing} | unknown

    with pytest.raises(ValidationError) as refused:
        FeatureRow.model_validate(given_values)

    assert refused_on(refused.value) == {(f,) for f in missing} | {(k,) for k in unknown}


@settings(PROPERTY, max_examples=30)  # up to 10,030 rows each
@given(st.one_of(st.integers(0, 30), st.integers(MAX_ROWS - 30, MAX_ROWS + 30)))
def test_a_request_has_one_to_max_rows_rows(count: int) -> None:
    body = {"rows": [GOOD_ROW] * count}

    if 1 <= count <= MAX_ROWS:
        assert len(PredictionRequest.model_validate(body).rows) == count
    else:
        with pytest.raises(ValidationError) as refused:
            PredictionRequest.model_validate(body)
        assert refused_on(refused.value) == {("rows",)}


@PROPERTY
@given(st.lists(ROWS, min_size=1, max_size=20), st.data())
def test_a_bad_row_is_named_by_its_index(rows: list[dict[str, float]], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(rows) - 1))
    feature = data.draw(st.sampled_from(FEATURES))
    rows[index] = {**rows[index], feature: data.draw(BAD_PYTHON)}

    with pytest.raises(ValidationError) as refused:
        PredictionRequest.model_validate({"rows": rows})

    assert refused_on(refused.value) == {("rows", index, feature)}


VERSION = re.compile(r"[1-9][0-9]{0,8}")
# What the OpenAPI schema publishes: the word or a version as a string, or an integer.
PUBLISHED_TEXT, PUBLISHED_NUMBER = PredictionRequest.model_json_schema()["properties"]["model"][
    "anyOf"
]


def expected_reference(reference: Any) -> str | None:
    """The rule: `"champion"`, a version as a string, or as a whole number (`3`, `3.0`)."""
    if isinstance(reference, str):
        return reference if reference == CHAMPION or VERSION.fullmatch(reference) else None
    if isinstance(reference, float) and reference.is_integer():
        reference = int(reference)
    if isinstance(reference, int) and not isinstance(reference, bool) and 0 < reference < 10**9:
        return str(reference)
    return None


@PROPERTY
@given(st.integers(1, 10**9 - 1))
def test_a_version_number_is_a_model_reference(version: int) -> None:
    for given_as in (version, str(version), float(version)):
        request = PredictionRequest.model_validate({"rows": [GOOD_ROW], "model": given_as})
        assert request.model == str(version)
        assert is_version(request.model)
        from_json = PredictionRequest.model_validate_json(
            json.dumps({"rows": [GOOD_ROW], "model": given_as})
        )
        assert from_json.model == str(version)
    assert not is_version(CHAMPION)


@PROPERTY
@given(
    st.one_of(
        st.text(),
        st.from_regex(VERSION, fullmatch=True).map(lambda v: v + "\n"),
        st.from_regex(r"\A0[0-9]{0,3}\Z"),
        st.integers(),
        st.floats(),
        st.sampled_from([True, False, None, [], {}, "Champion", "champion ", "latest", 10**9]),
    )
)
@example("3\n").via("a trailing newline, which `$` in a Python regex lets through")
def test_only_the_rule_makes_a_model_reference(reference: Any) -> None:
    expected = expected_reference(reference)
    body = {"rows": [GOOD_ROW], "model": reference}
    if isinstance(reference, str):
        assert is_version(reference) == (expected is not None and reference != CHAMPION)
        # The published pattern agrees (JSON Schema's `$` is the end of the text: `\Z`).
        published = PUBLISHED_TEXT["pattern"].removesuffix("$") + r"\Z"
        assert (re.search(published, reference) is not None) == (expected is not None)
    elif isinstance(reference, int) and not isinstance(reference, bool):
        low, high = PUBLISHED_NUMBER["minimum"], PUBLISHED_NUMBER["maximum"]
        assert (low <= reference <= high) == (expected is not None)

    if expected is not None:
        assert PredictionRequest.model_validate(body).model == expected
    else:
        with pytest.raises(ValidationError) as refused:
            PredictionRequest.model_validate(body)
        assert refused_on(refused.value) == {("model",)}
        assert 'must be "champion"' in str(refused.value)
