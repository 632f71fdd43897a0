"""Batch CSV scoring through the real stack: every accepted dialect and every refusal."""

from __future__ import annotations

import csv
import io
import random

import numpy as np
import pytest

from api.routes.batches import LocalFileResponse
from irisq.ranges import OBSERVED_RANGES
from irisq.schema import FEATURES, SPECIES
from tests.support.stack import Stack
from worker.registry import Registry

KAGGLE = (
    "\ufeffId,SepalLengthCm,SepalWidthCm,PetalLengthCm,PetalWidthCm,Species\r\n"
    "1,5.1,3.5,1.4,0.2,Iris-setosa\r\n"
    "2,7.0,3.2,4.7,1.4,Iris-versicolor\r\n"
    "3,6.3,3.3,6.0,2.5,Iris-virginica\r\n"
    "4,4.9,3.0,1.4,0.2,Iris-setosa\r\n"
).encode()
FRENCH = (
    b'sepal length (cm);sepal width (cm);petal length (cm);petal width (cm);"remarque"\n'
    b'5,1;3,5;1,4;0,2;"jardin; nord"\n'
    b'6,3;3,3;6,0;2,5;=HYPERLINK("http://x")\n'
)
R_STYLE = (
    b'"Sepal.Length","Sepal.Width","Petal.Length","Petal.Width","Variety"\n'
    b'5.1,3.5,1.4,.2,"Setosa"\n7,3.2,4.7,1.4,"Versicolor"'
)


# A French spreadsheet's "CSV UTF-8" export: BOM, `;`, decimal commas, CRLF.
FRENCH_EXCEL = (
    "\ufeffLongueur;Sepal.Length;Sepal.Width;Petal.Length;Petal.Width;Species\r\n"
    "a;5,10;3,5;1,4;0,2;Iris-setosa\r\n"
    "b;6,30;3,3;6,0;2,5;Iris-virginica\r\n"
    "c;7;3,2;4,7;1,4;Iris-versicolor\r\n"
).encode()
# UCI's iris.data: no header line, `Iris-` names, a blank line at the end.
UCI_IRIS_DATA = (
    b"5.1,3.5,1.4,0.2,Iris-setosa\n"
    b"7.0,3.2,4.7,1.4,Iris-versicolor\n"
    b"6.3,3.3,6.0,2.5,Iris-virginica\n"
    b"\n"
)


@pytest.fixture(params=["local", "s3"])
def on_either(request: pytest.FixtureRequest) -> Stack:
    """Every test here runs on both batch storages: a folder, and S3 (SeaweedFS)."""
    stack: Stack = request.getfixturevalue("stack")  # first: it bootstraps the champion
    return stack if request.param == "local" else request.getfixturevalue("s3_stack")


def _rows(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))


def _download(on_either: Stack, job_id: str) -> bytes:
    response = on_either.api.get(f"/v1/batches/{job_id}/result")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return response.content


def _result(on_either: Stack, job_id: str, delimiter: str = ",") -> list[dict[str, str]]:
    return _rows(_download(on_either, job_id).decode("utf-8-sig"), delimiter)


def test_kaggle_iris_csv_with_bom_and_crlf_is_scored_with_accuracy(on_either: Stack) -> None:
    job = on_either.batch(KAGGLE)

    assert job["status"] == "succeeded", job
    assert job["kind"] == "batch"
    summary = job["result"]
    assert summary["rows_read"] == summary["rows_scored"] == 4
    assert summary["rows_rejected"] == 0
    assert summary["counts"] == {"setosa": 2, "versicolor": 1, "virginica": 1}
    assert summary["label_column"] == "Species"
    assert summary["accuracy"] == 1.0
    assert summary["columns"]["petal_width"] == "PetalWidthCm"
    rows = _result(on_either, job["job_id"])
    assert list(rows[0])[:6] == [
        "Id",
        "SepalLengthCm",
        "SepalWidthCm",
        "PetalLengthCm",
        "PetalWidthCm",
        "Species",
    ]
    assert [r["irisq_species"] for r in rows] == ["setosa", "versicolor", "virginica", "setosa"]
    assert {r["model_version"] for r in rows} == {summary["model_version"]}


def test_semicolons_decimal_commas_and_quotes_are_read(on_either: Stack) -> None:
    job = on_either.batch(FRENCH)

    assert job["status"] == "succeeded", job
    assert job["result"]["delimiter"] == ";"
    rows = _result(on_either, job["job_id"], ";")
    assert [r["species"] for r in rows] == ["setosa", "virginica"]
    assert rows[0]["sepal length (cm)"] == "5,1"
    assert rows[0]["remarque"] == "jardin; nord"
    assert rows[1]["remarque"] == '\'=HYPERLINK("http://x")'  # neutralised, not a formula


def test_a_french_export_comes_back_in_its_own_dialect(on_either: Stack) -> None:
    """`;`, decimal commas, CRLF and a BOM in, the same out: it opens in the same spreadsheet,
    one cell a column; measurements come back as written (`5,10`, `7`)."""
    job = on_either.batch(FRENCH_EXCEL)

    assert job["status"] == "succeeded", job
    summary = job["result"]
    assert {k: summary[k] for k in ("delimiter", "decimal_mark", "line_ending", "bom")} == {
        "delimiter": ";",
        "decimal_mark": ",",
        "line_ending": "CRLF",
        "bom": True,
    }
    assert summary["header"] is True
    assert summary["accuracy"] == 1.0
    raw = _download(on_either, job["job_id"])
    assert raw.startswith(b"\xef\xbb\xbfLongueur;Sepal.Length;Sepal.Width;Petal.Length;")
    assert raw.count(b"\r\n") == 4
    assert b"\n" not in raw.replace(b"\r\n", b"")
    rows = _result(on_either, job["job_id"], ";")
    assert [[r[c] for c in ("Longueur", "Sepal.Length", "Petal.Width")] for r in rows] == [
        ["a", "5,10", "0,2"],
        ["b", "6,30", "2,5"],
        ["c", "7", "1,4"],
    ]
    assert [r["irisq_species"] for r in rows] == ["setosa", "virginica", "versicolor"]
    for row in rows:
        written = [row[f"probability_{species}"] for species in SPECIES]
        assert all("." not in p for p in written), written
        assert sum(float(p.replace(",", ".")) for p in written) == pytest.approx(1, abs=1e-5)


def test_uci_iris_data_without_header_is_scored_and_given_one(on_either: Stack) -> None:
    job = on_either.batch(UCI_IRIS_DATA)

    assert job["status"] == "succeeded", job
    summary = job["result"]
    assert summary["header"] is False
    assert summary["rows_read"] == summary["rows_scored"] == 3
    assert summary["columns"] == {f: f for f in FEATURES}
    assert summary["label_column"] == "class"
    assert summary["accuracy"] == 1.0
    raw = _download(on_either, job["job_id"]).decode()
    assert raw.splitlines()[0] == (
        "sepal_length,sepal_width,petal_length,petal_width,class,species,"
        "probability_setosa,probability_versicolor,probability_virginica,model_version"
    )
    rows = _rows(raw)
    assert [r["sepal_length"] for r in rows] == ["5.1", "7.0", "6.3"]
    assert [r["species"] for r in rows] == ["setosa", "versicolor", "virginica"]


def test_scikit_learns_frame_is_scored_against_its_target_codes(on_either: Stack) -> None:
    body = (
        "sepal length (cm),sepal width (cm),petal length (cm),petal width (cm),target\n"
        "5.1,3.5,1.4,0.2,0\n7.0,3.2,4.7,1.4,1\n6.3,3.3,6.0,2.5,2.0\n"
    )

    job = on_either.batch(body.encode())

    assert job["status"] == "succeeded", job
    assert job["result"]["label_column"] == "target"
    assert job["result"]["labelled_rows"] == 3
    assert job["result"]["accuracy"] == 1.0


def test_r_style_names_without_final_newline_and_a_variety_label(on_either: Stack) -> None:
    job = on_either.batch(R_STYLE)

    assert job["status"] == "succeeded", job
    assert job["result"]["label_column"] == "Variety"
    assert job["result"]["accuracy"] == 1.0
    assert [r["species"] for r in _result(on_either, job["job_id"])] == ["setosa", "versicolor"]


def test_the_download_matches_in_process_predictions_row_by_row(on_either: Stack) -> None:
    generator = random.Random(7)
    rows = [
        [round(generator.uniform(*OBSERVED_RANGES[f]), 1) for f in FEATURES] for _ in range(3000)
    ]
    body = "sepal_length,sepal_width,petal_length,petal_width\n" + "".join(
        ",".join(map(str, row)) + "\n" for row in rows
    )

    job = on_either.batch(body.encode())

    assert job["status"] == "succeeded", job
    version = job["result"]["model_version"]
    model = Registry(on_either.settings).load(version)  # checked and loaded as workers do
    expected = model.predict_proba(np.asarray(rows))
    classes = list(model.classes_)
    scored = _result(on_either, job["job_id"])
    assert len(scored) == len(rows)
    for sent, got, probabilities in zip(rows, scored, expected, strict=True):
        assert [float(got[f]) for f in FEATURES] == sent
        assert got["species"] == classes[int(np.argmax(probabilities))]
        for species in SPECIES:
            want = probabilities[classes.index(species)]
            assert float(got[f"probability_{species}"]) == pytest.approx(want, abs=1e-6)
        assert got["model_version"] == version


def test_a_result_of_many_pieces_downloads_whole_and_by_range(stack: Stack) -> None:
    """A local result is read in pieces: the whole file, and a range longer than a piece
    that starts inside one, come back as they are on disk."""
    generator = random.Random(11)
    body = "sepal_length,sepal_width,petal_length,petal_width\n" + "".join(
        ",".join(str(round(generator.uniform(*OBSERVED_RANGES[f]), 2)) for f in FEATURES) + "\n"
        for _ in range(40_000)
    )
    job = stack.batch(body.encode())
    assert job["status"] == "succeeded", job

    whole = _download(stack, job["job_id"])
    piece = LocalFileResponse.chunk_size
    assert len(whole) > 4 * piece  # the download spans several pieces
    assert len(_rows(whole.decode())) == 40_000
    first, last = piece - 1000, 3 * piece + 999  # two whole pieces and parts of two more
    ranged = stack.api.get(
        f"/v1/batches/{job['job_id']}/result", headers={"Range": f"bytes={first}-{last}"}
    )
    assert ranged.status_code == 206, ranged.text
    assert ranged.headers["content-range"] == f"bytes {first}-{last}/{len(whole)}"
    assert ranged.content == whole[first : last + 1]


@pytest.mark.parametrize(
    ("content", "status", "words"),
    [
        (b"", 422, "the file is empty"),
        (b"\xef\xbb\xbf\r\n", 422, "the file is empty"),
        (b"sepal_length,sepal_width,petal_length,petal_width\n", 422, "header but no rows"),
        (b"sepal_length,sepal_width,petal_length,petal_width", 422, "header but no rows"),
        (
            b"sepal_length,sepal_width,petal_len,colour\n5.1,3.5,1.4,red\n",
            422,
            "missing required column(s) petal_length, petal_width; found columns: "
            "'sepal_length', 'sepal_width', 'petal_len', 'colour'",
        ),
        (  # the column rules of /invocations too: a measurement named once
            b"sepal_length,sepal_width,petal_length,petal_width,Sepal.Length\n5,3,1,0.2,5\n",
            422,
            "the columns 'sepal_length' and 'Sepal.Length' both name sepal_length",
        ),
        (
            b"1,5.1,3.5,1.4,0.2,Iris-setosa\n2,4.9,3.0,1.4,0.2,Iris-setosa\n",
            422,
            "the header line is missing: the first line holds data ('1', '5.1', '3.5',",
        ),
        (
            "sepal_length,sepal_width,petal_length,petal_width,note\n5,3,1,0.2,café\n".encode(
                "latin-1"
            ),
            422,
            "not UTF-8",
        ),
    ],
)
def test_unusable_files_are_refused_at_upload(
    on_either: Stack, content: bytes, status: int, words: str
) -> None:
    response = on_either.upload(content)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.json()["detail"]


BAD_CELLS = [
    ("5.1,abc,1.4,0.2", "sepal_width", "not a number"),
    ("5.1,,1.4,0.2", "sepal_width", "empty cell"),
    ("5.1,NaN,1.4,0.2", "sepal_width", "NaN"),
    ("5.1,inf,1.4,0.2", "sepal_width", "infinite"),
    ("5.1,3.5,-1.4,0.2", "petal_length", "greater than 0"),
    ("5.1,3.5,1.4,250", "petal_width", "not a plausible Iris measurement"),
]


@pytest.mark.parametrize(("line", "column", "words"), BAD_CELLS)
def test_a_bad_cell_refuses_the_file_naming_line_and_column(
    on_either: Stack, line: str, column: str, words: str
) -> None:
    content = f"sepal_length,sepal_width,petal_length,petal_width\n5,3,1,0.2\n{line}\n"

    job = on_either.batch(content.encode())

    assert job["status"] == "failed"
    error = job["error"]
    assert error["type"] == "invalid_csv"
    assert f"line 3, column '{column}'" in error["message"]
    assert words in error["details"][0]["message"]
    result = on_either.api.get(f"/v1/batches/{job['job_id']}/result")
    assert result.status_code == 409
    assert "line 3" in result.json()["detail"]


def test_skip_scores_the_good_rows_and_lists_the_bad_ones(on_either: Stack) -> None:
    lines = [line for line, _, _ in BAD_CELLS]
    content = "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n\n"
    content += "\n".join(lines) + "\n5.1,3.5\n6.3,3.3,6.0,2.5\n"

    job = on_either.batch(content.encode(), on_invalid="skip")

    assert job["status"] == "succeeded", job
    summary = job["result"]
    assert (summary["rows_read"], summary["rows_scored"], summary["rows_rejected"]) == (9, 2, 7)
    assert [r["species"] for r in _result(on_either, job["job_id"])] == ["setosa", "virginica"]
    errors = _rows(on_either.api.get(f"/v1/batches/{job['job_id']}/errors").text)
    assert [(e["line"], e["column"]) for e in errors] == [
        ("4", "sepal_width"),
        ("5", "sepal_width"),
        ("6", "sepal_width"),
        ("7", "sepal_width"),
        ("8", "petal_length"),
        ("9", "petal_width"),
        ("10", ""),
    ]
    assert errors[-1]["message"] == "expected 4 cells, found 2"


def test_result_of_an_unknown_or_other_job_is_404(on_either: Stack) -> None:
    prediction = on_either.api.post(
        "/v1/predictions",
        json={
            "rows": [
                {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
            ]
        },
    )
    other = prediction.json()["job_id"]

    for job_id in ("no-such-job", other):
        assert on_either.api.get(f"/v1/batches/{job_id}/result").status_code == 404


def test_a_body_that_is_not_multipart_is_415(on_either: Stack) -> None:
    response = on_either.api.post(
        "/v1/batches", content=b"a,b\n1,2\n", headers={"content-type": "text/csv"}
    )

    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b"--xyz\r\nnot a header line\r\n\r\n",
        b"no boundary at all",
        b'--xyz\r\nContent-Disposition: form-data; name="file"\r\n\r\n'
        b"sepal_length,sepal_width,petal_length,petal_width\n5,3,1,1\n",  # never closed
    ],
)
def test_malformed_multipart_is_400(on_either: Stack, body: bytes) -> None:
    response = on_either.api.post(
        "/v1/batches", content=body, headers={"content-type": "multipart/form-data; boundary=xyz"}
    )

    assert response.status_code == 400
    assert "multipart body" in response.json()["detail"]


def test_a_form_without_the_file_field_is_422(on_either: Stack) -> None:
    response = on_either.api.post("/v1/batches", files={"upload": ("x.csv", b"a\n1\n", "text/csv")})

    assert response.status_code == 422
    assert "no field 'file'" in response.json()["detail"]
