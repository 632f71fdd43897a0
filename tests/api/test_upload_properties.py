"""Properties of the streaming upload check, on generated files cut into arbitrary chunks.

Plain function calls: no stack, no HTTP.
"""

from __future__ import annotations

import itertools
from unittest import mock

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from api import upload
from api.upload import CsvInspector, UploadRefusedError
from tests.support.csv_files import (
    FILE_PROPERTY,
    HEADER,
    ODD_BYTES,
    PROPERTY,
    ROW,
    CsvCase,
    csv_cases,
)

LIMIT = 10**9


# Where to cut a file into chunks, as fractions of its length (empty chunks included).
CUTS = st.lists(st.floats(0, 1), max_size=8)


def chunked(content: bytes, cuts: list[float]) -> list[bytes]:
    bounds = [0, *sorted(round(c * len(content)) for c in cuts), len(content)]
    return [content[a:b] for a, b in itertools.pairwise(bounds)]


def inspect(chunks: list[bytes], max_bytes: int = LIMIT, max_rows: int = LIMIT) -> CsvInspector:
    inspector = CsvInspector(max_bytes=max_bytes, max_rows=max_rows)
    for chunk in chunks:
        inspector.feed(chunk)
    inspector.finish()
    return inspector


def outcome(chunks: list[bytes], max_bytes: int = LIMIT, max_rows: int = LIMIT) -> int:
    """The rows counted, or minus the refusal's status; any other exception fails the test."""
    try:
        return inspect(chunks, max_bytes, max_rows).rows
    except UploadRefusedError as exc:
        refused = exc
    assert 400 <= refused.status < 500, refused.status
    assert refused.detail
    return -refused.status


@FILE_PROPERTY
@given(CUTS, csv_cases())
def test_a_well_formed_file_is_accepted_in_any_chunks(cuts: list[float], case: CsvCase) -> None:
    chunks = chunked(case.content, cuts)

    inspector = inspect(chunks)

    # Every physical line after the header counts (blank ones, those inside quotes): the
    # count is an upper bound of the records, used for the row limit and for progress.
    assert inspector.rows == case.lines_after_header
    assert inspector.rows >= len(case.records)
    assert inspector.size == len(case.content)


@PROPERTY
@given(CUTS, ODD_BYTES, st.integers(1, 300), st.integers(0, 12))
@example([], b"", 100, 10).via("the empty file")
@example([], HEADER + ROW[:-1] + b"\r", 1_000, 10).via("a CR alone at the very end")
def test_any_bytes_are_accepted_or_refused_with_a_4xx_whatever_the_chunks(
    cuts: list[float], content: bytes, max_bytes: int, max_rows: int
) -> None:
    """Never another exception; and whether a file passes does not depend on the chunks."""
    chunks = chunked(content, cuts)

    whole = outcome([content], max_bytes, max_rows)
    split = outcome(chunks, max_bytes, max_rows)

    assert (whole >= 0) == (split >= 0)
    if whole >= 0:
        assert whole == split
        assert len(content) <= max_bytes
        assert "\r" not in content.decode().replace("\r\n", "")


@FILE_PROPERTY
@given(CUTS, csv_cases(), st.integers(0, 30))
def test_the_row_limit_counts_lines_after_the_header(
    cuts: list[float], case: CsvCase, max_rows: int
) -> None:
    chunks = chunked(case.content, cuts)

    if case.lines_after_header <= max_rows:
        assert inspect(chunks, max_rows=max_rows).rows == case.lines_after_header
    else:
        with pytest.raises(UploadRefusedError, match=f"more than {max_rows:,} rows") as refused:
            inspect(chunks, max_rows=max_rows)
        assert refused.value.status == 413


@FILE_PROPERTY
@given(CUTS, csv_cases(), st.integers(1, 400))
def test_the_size_limit_is_exact(cuts: list[float], case: CsvCase, max_bytes: int) -> None:
    chunks = chunked(case.content, cuts)

    if len(case.content) <= max_bytes:
        inspect(chunks, max_bytes=max_bytes)
    else:
        with pytest.raises(UploadRefusedError, match="larger than the limit") as refused:
            inspect(chunks, max_bytes=max_bytes)
        assert refused.value.status == 413


@FILE_PROPERTY
@given(
    CUTS,
    csv_cases(),
    st.tuples(
        st.binary(max_size=3).filter(lambda b: b"\r" not in b),
        st.sampled_from([b"\xff", b"\xc3", b"\x80", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf"]),
    ).map(b"".join),
    st.integers(0, 10**6),
)
def test_invalid_utf8_is_refused_at_its_first_bad_byte(
    cuts: list[float], case: CsvCase, bad: bytes, where: int
) -> None:
    cut = where % (len(case.content) + 1)
    content = case.content[:cut] + bad + case.content[cut:]
    try:
        content.decode()
    except UnicodeDecodeError as exc:
        offset = exc.start
    else:
        return  # the inserted bytes happen to be UTF-8
    chunks = chunked(content, cuts)

    with pytest.raises(UploadRefusedError) as refused:
        inspect(chunks)

    # The header is checked as soon as its line is complete: a bad byte after it may lose to
    # a header problem the insertion caused (a newline inserted into it), never to anything else.
    assert refused.value.status == 422
    # Inserted between a CR and its LF, the bad bytes also leave a lone CR behind: the file
    # has two faults then, and naming either one is right.
    splits_crlf = case.content[cut - 1 : cut] == b"\r"
    if offset < content.index(b"\n") and not splits_crlf:
        assert "not UTF-8" in refused.value.detail
    if "not UTF-8" in refused.value.detail:
        assert f"invalid byte at offset {offset:,})" in refused.value.detail


@FILE_PROPERTY
@given(CUTS, csv_cases(), st.integers(0, 10**6))
def test_a_lone_carriage_return_anywhere_is_refused(
    cuts: list[float], case: CsvCase, where: int
) -> None:
    text = case.text
    cut = where % (len(text) + 1)
    while text[cut : cut + 1] == "\n":
        cut -= 1  # a CR right before an LF would make a CRLF
    content = (text[:cut] + "\r" + text[cut:]).encode()
    chunks = chunked(content, cuts)

    with pytest.raises(UploadRefusedError) as refused:
        inspect(chunks)

    assert refused.value.status == 422


@FILE_PROPERTY
@given(CUTS, csv_cases(), st.integers(20, 120))
def test_the_header_length_limit_does_not_depend_on_the_chunks(
    cuts: list[float], case: CsvCase, limit: int
) -> None:
    chunks = chunked(case.content, cuts)
    header_line = case.text.partition("\n")[0]

    with mock.patch.object(upload, "MAX_HEADER_LINE", limit):
        whole = outcome([case.content])
        split = outcome(chunks)

    assert whole == split
    assert (whole == -422) == (len(header_line) > limit)


# UCI's iris.data: no header line; every line is a row.
UCI_ROWS = st.lists(
    st.tuples(
        st.lists(st.decimals(min_value="0.1", max_value="9.9", places=1), min_size=4, max_size=4),
        st.sampled_from(["", "Iris-setosa", "Iris-versicolor", "virginica", "1"]),
    ).map(lambda row: ",".join([*map(str, row[0]), *([row[1]] if row[1] else [])])),
    min_size=1,
    max_size=20,
)


@PROPERTY
@given(CUTS, UCI_ROWS, st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_a_file_without_header_in_uci_layout_counts_every_line_as_a_row(
    cuts: list[float], rows: list[str], end: str, bom: bool
) -> None:
    width = rows[0].count(",") + 1
    rows = [row if row.count(",") + 1 == width else rows[0] for row in rows]  # one layout
    content = (("\ufeff" if bom else "") + end.join(rows) + end).encode()

    inspector = inspect(chunked(content, cuts))

    assert inspector.headerless
    assert inspector.rows == len(rows)
    with pytest.raises(UploadRefusedError, match=f"more than {len(rows) - 1:,} rows"):
        inspect(chunked(content, cuts), max_rows=len(rows) - 1)


@PROPERTY
@given(
    CUTS,
    st.sampled_from(
        [
            b"1,5.1,3.5,1.4,0.2,Iris-setosa\n",  # an id first
            b"5.1,3.5,1.4\n",  # three measurements
            b"5.1;3.5;1.4;0.2;setosa;x\n",  # six cells
            b"150,4,setosa,versicolor,virginica\n",  # scikit-learn's iris.csv
        ]
    ),
)
def test_a_first_line_of_data_in_another_layout_is_refused_as_a_missing_header(
    cuts: list[float], first: bytes
) -> None:
    content = first + b"5.1,3.5,1.4,0.2\n"

    with pytest.raises(UploadRefusedError, match=r"^the header line is missing") as refused:
        inspect(chunked(content, cuts))

    assert refused.value.status == 422
