"""Upload limits, decided while the body streams in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.upload import CsvInspector, UploadRefusedError
from irisq.settings import Settings

HEADER = b"sepal_length,sepal_width,petal_length,petal_width\n"
ROW = b"5.1,3.5,1.4,0.2\n"


@pytest.fixture
def small_limits(redis_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        redis_url=redis_url, batch_dir=tmp_path, batch_max_bytes=2_000, batch_max_rows=10
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _upload(client: TestClient, content: bytes) -> tuple[int, str]:
    response = client.post("/v1/batches", files={"file": ("f.csv", content, "text/csv")})
    return response.status_code, response.json()["detail"]


def test_a_file_over_the_size_limit_is_413_and_leaves_nothing(
    small_limits: TestClient, tmp_path: Path
) -> None:
    status, detail = _upload(small_limits, HEADER + ROW * 200)

    assert status == 413
    assert "larger than the limit of 2,000 bytes" in detail
    assert list(tmp_path.iterdir()) == []


def test_more_rows_than_the_limit_is_413(small_limits: TestClient) -> None:
    status, detail = _upload(small_limits, HEADER + ROW * 11)

    assert status == 413
    assert "more than 10 rows" in detail


def test_exactly_the_row_limit_is_accepted_by_the_inspector() -> None:
    inspector = CsvInspector(max_bytes=10_000, max_rows=10)
    inspector.feed(HEADER + ROW * 10)
    inspector.finish()

    assert inspector.rows == 10


def test_the_size_limit_is_decided_on_the_chunk_that_crosses_it() -> None:
    inspector = CsvInspector(max_bytes=1_000, max_rows=1_000)
    inspector.feed(HEADER + ROW * 50)  # 850 bytes: still fine

    with pytest.raises(UploadRefusedError) as refused:
        inspector.feed(ROW * 10)  # 1,010 bytes: refused now, before any later chunk

    assert refused.value.status == 413


def test_a_wrong_header_is_refused_on_the_first_line() -> None:
    inspector = CsvInspector(max_bytes=10**9, max_rows=10**9)

    with pytest.raises(UploadRefusedError, match="missing required column"):
        inspector.feed(b"a,b,c,d\n")


def test_utf8_split_across_chunks_is_fine() -> None:
    inspector = CsvInspector(max_bytes=10_000, max_rows=10)
    content = HEADER.replace(b"\n", b",note\n") + "5.1,3.5,1.4,0.2,café\n".encode()
    cut = content.index(b"\xc3") + 1  # between the two bytes of "é"
    inspector.feed(content[:cut])
    inspector.feed(content[cut:])
    inspector.finish()

    assert inspector.rows == 1


def test_other_form_parts_count_against_the_size_limit(small_limits: TestClient) -> None:
    response = small_limits.post(
        "/v1/batches",
        files={
            "notes": ("n.txt", b"x" * 100_000, "text/plain"),
            "file": ("f.csv", HEADER + ROW, "text/csv"),
        },
    )

    assert response.status_code == 413


def test_an_overlong_multipart_boundary_is_400(small_limits: TestClient) -> None:
    boundary = "b" * 300
    response = small_limits.post(
        "/v1/batches",
        content=f"--{boundary}--\r\n".encode(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )

    assert response.status_code == 400


@pytest.mark.parametrize(
    "content",
    [
        HEADER.replace(b"\n", b"\r") + ROW.replace(b"\n", b"\r") * 3,  # CR-only lines
        b'sepal_length,sepal_width,"petal\rlength",petal_width\n' + ROW,
    ],
)
def test_lone_carriage_returns_are_refused(content: bytes) -> None:
    inspector = CsvInspector(max_bytes=10_000, max_rows=10)

    with pytest.raises(UploadRefusedError, match="LF or CRLF") as refused:
        inspector.feed(content)

    assert refused.value.status == 422


def test_crlf_split_across_chunks_is_fine() -> None:
    inspector = CsvInspector(max_bytes=10_000, max_rows=10)
    content = (HEADER + ROW * 2).replace(b"\n", b"\r\n")
    cut = content.index(b"\r\n", len(HEADER)) + 1  # between CR and LF
    inspector.feed(content[:cut])
    inspector.feed(content[cut:])
    inspector.finish()

    assert inspector.rows == 2


def test_the_offset_of_a_bad_byte_counts_a_character_split_across_chunks() -> None:
    inspector = CsvInspector(max_bytes=10_000, max_rows=10)
    inspector.feed(HEADER)
    inspector.feed(b"5.1,\xe2\x82")  # the start of a three-byte character...

    with pytest.raises(UploadRefusedError, match=f"offset {len(HEADER) + 4:,}"):
        inspector.feed(b"x")  # ...that never ends
