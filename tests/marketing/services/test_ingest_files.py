"""Whole-file problems: refused at upload with a message naming the problem, nothing stored."""

import pytest

from marketing.ingest import IngestError
from marketing.models import AuditEvent, Upload
from marketing.services.ingest import upload_create
from tests.factories import make_customer
from tests.marketing.services.ingest_helpers import csv_file, customers_csv, stored

pytestmark = pytest.mark.django_db


@pytest.fixture
def existing():
    """Data already stored, which a refused upload must leave exactly as it is."""
    make_customer("C001", identity={"email": "old@example.com"}, age=50)
    return stored()


def refused(marketer, content, *, kind="customers", **options) -> str:
    uploads = Upload.objects.count()
    with pytest.raises(IngestError) as caught:
        upload_create(kind=kind, file=csv_file(content), by=marketer, **options)
    assert Upload.objects.count() == uploads
    return str(caught.value)


def test_it_refuses_an_empty_file(marketer, existing):
    assert refused(marketer, b"") == "The file is empty."
    assert refused(marketer, b"\xef\xbb\xbf \n\n") == "The file is empty."
    assert stored() == existing


def test_it_refuses_a_header_without_rows(marketer, existing):
    message = refused(marketer, "customer_id,email\n")
    assert "header row but no data rows" in message
    assert stored() == existing


def test_it_refuses_a_file_over_the_size_limit(marketer, existing, settings):
    settings.MAX_UPLOAD_BYTES = 1024
    content = customers_csv(40)
    message = refused(marketer, content)
    assert f"The file is 2.3 KB ({len(content):,} bytes)" in message
    assert "over the upload limit of 1.0 KB (1,024 bytes)" in message
    assert stored() == existing


def test_it_names_the_line_that_is_not_utf8(marketer, existing):
    content = "customer_id,city\nC001,Berlin\nC002,Köln\n".encode("latin-1")
    message = refused(marketer, content)
    assert "not valid UTF-8" in message
    assert "line 3" in message and "0xF6" in message
    assert "latin-1" in message  # tells how to fix it
    assert stored() == existing


def test_it_reads_a_latin1_file_when_told_its_encoding(marketer):
    content = "customer_id,city\nC001,Köln\n".encode("latin-1")
    upload = upload_create(
        kind="customers", file=csv_file(content), by=marketer, encoding="latin-1"
    )
    assert upload.encoding == "iso8859-1"
    assert upload.mapping["attr:city"] == "city"


def test_it_refuses_an_unknown_encoding(marketer):
    assert "not an encoding we know" in refused(marketer, "customer_id\nC1\n", encoding="klingon")


def test_it_explains_utf16_files(marketer):
    content = "customer_id,city\nC001,Köln\n".encode("utf-16")
    assert "UTF-16" in refused(marketer, content)


def test_it_explains_a_header_it_cannot_split(marketer, existing):
    message = refused(marketer, "customer_id:email:age\nC001:a@example.com:31\n")
    assert "could not be split" in message
    assert "single column 'customer_id:email:age'" in message
    assert "colons" in message
    assert stored() == existing


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_it_detects_the_delimiter(marketer, delimiter):
    upload = upload_create(
        kind="customers", file=csv_file(customers_csv(5, delimiter=delimiter)), by=marketer
    )
    assert upload.delimiter == delimiter
    assert upload.headers[:2] == ["customer_id", "email"]
    assert upload.row_count == 5


def test_it_keeps_commas_inside_quoted_semicolon_fields(marketer):
    text = 'customer_id;city;note\nC1;"Berlin, Mitte";"a, b, c"\nC2;Paris;x\n'
    upload = upload_create(kind="customers", file=csv_file(text), by=marketer)
    assert upload.delimiter == ";"


def test_it_refuses_duplicate_header_names(marketer, existing):
    message = refused(marketer, "customer_id,email,Email\nC1,a@example.com,b@example.com\n")
    assert "names column 'Email' twice (columns 2 and 3)" in message
    assert stored() == existing


def test_it_refuses_a_blank_header_name(marketer):
    message = refused(marketer, "customer_id,,age\nC1,x,3\n")
    assert "Column 2 of the header has no name" in message


def test_it_refuses_rows_with_the_wrong_number_of_fields(marketer, existing):
    text = customers_csv(10) + "C011,x@example.com,DE\n"
    message = refused(marketer, text)
    assert "row 11 (line 12) has 3 fields" in message
    assert "the 7 fields of the header" in message
    assert stored() == existing


def test_it_refuses_an_unknown_kind(marketer):
    assert "not a kind of upload" in refused(marketer, "a\n1\n", kind="orders")


def test_it_stores_a_good_file_with_its_shape_and_an_audit_entry(marketer):
    upload = upload_create(kind="customers", file=csv_file(customers_csv(30)), by=marketer)
    assert (upload.status, upload.row_count, upload.created_by) == (
        Upload.Status.UPLOADED,
        30,
        marketer,
    )
    assert upload.summary["column_types"]["age"] == "number"
    assert upload.summary["column_types"]["plan"] == "text"
    assert upload.summary["missing_required"] == []
    assert upload.file.read().decode() == customers_csv(30)
    event = AuditEvent.objects.get(action=AuditEvent.Action.UPLOAD)
    assert (event.actor, event.target_ref) == (marketer, str(upload.pk))


def test_it_refuses_more_columns_than_the_limit(marketer, existing, settings):
    settings.MAX_UPLOAD_COLUMNS = 5
    header = ",".join(["customer_id"] + [f"c{i}" for i in range(1, 6)])
    message = refused(marketer, f"{header}\n{','.join(['C9'] * 6)}\n")
    assert "6 columns" in message and "at most 5" in message
    assert stored() == existing


def test_it_refuses_the_twenty_thousand_column_file_by_default(marketer, existing):
    header = ",".join(["customer_id"] + [f"c{i}" for i in range(1, 20_001)])
    message = refused(marketer, f"{header}\n{','.join(['1'] * 20_001)}\n")
    assert "20,001 columns" in message
    assert stored() == existing


def test_it_refuses_a_nul_byte_in_a_cell_naming_row_and_column(marketer, existing):
    content = b"customer_id,email,age\nC1,a@example.com,31\nC2,b@exa\x00mple.com,42\n"
    message = refused(marketer, content)
    assert "Row 2 (line 3), column 'email'" in message
    assert "NUL" in message
    assert stored() == existing


def test_it_refuses_a_nul_byte_in_the_header(marketer, existing):
    message = refused(marketer, b"customer_id,em\x00ail\nC1,a@example.com\n")
    assert "Column 2 of the header" in message and "NUL" in message
    assert stored() == existing
