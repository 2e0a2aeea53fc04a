"""MovieLens 100K imported from a downloaded folder (the real one when the shared data folder
has it, never copied into the project; a tiny made-up one otherwise)."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from marketing.ingest import IngestError
from marketing.ingest.movielens import customer_records, read_movielens
from marketing.models import (
    AuditEvent,
    ConsentRecord,
    Customer,
    Interaction,
    Offer,
    ProfileField,
)
from marketing.services.demo import movielens_load
from tests.marketing.services.ingest_helpers import stored

pytestmark = pytest.mark.django_db

MOVIELENS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "movielens-100k"
needs_movielens = pytest.mark.skipif(
    not (MOVIELENS / "u.data").is_file(),
    reason=f"MovieLens 100K is not at {MOVIELENS} (download ml-100k from GroupLens)",
)

TINY = {
    "u.genre": "unknown|0\nAction|1\nComedy|2\n\n",
    "u.user": "1|24|M|technician|85711\n2|53|F|other|V3N4P\n",
    "u.item": (
        "1|Toy Story (1995)|01-Jan-1995||http://imdb/1|0|0|1\n"
        "2|GoldenEye (1995)|01-Jan-1995||http://imdb/2|0|1|1\n"
        "3|unknown|||http://imdb/3|1|0|0\n"
    ).encode("latin-1"),
    "u.data": "1\t1\t5\t881250949\n1\t2\t3\t881250950\n2\t1\t4\t891717742\n2\t3\t1\t891717743\n",
}


def make_folder(path: Path, **files: str | bytes | None) -> Path:
    """A made-up MovieLens folder: the tiny files, with ``files`` replacing some of them
    (None leaves one out)."""
    path.mkdir()
    for name, content in {**TINY, **{k.replace("_", "."): v for k, v in files.items()}}.items():
        if isinstance(content, bytes):
            (path / name).write_bytes(content)
        elif content is not None:
            (path / name).write_text(content)
    return path


def ratings_in(folder: Path) -> list[int]:
    return [int(line.split("\t")[2]) for line in (folder / "u.data").read_text().splitlines()]


@needs_movielens
@pytest.mark.slow
def test_it_imports_every_user_movie_and_rating_of_movielens_100k():
    counts = movielens_load(folder=MOVIELENS)

    converted = sum(1 for stars in ratings_in(MOVIELENS) if stars >= 4)
    assert (Customer.objects.count(), Offer.objects.count()) == (943, 1682)
    assert Interaction.objects.filter(kind="impression").count() == 100_000
    assert Interaction.objects.filter(kind="conversion").count() == converted
    assert set(Interaction.objects.values_list("campaign", flat=True)) == {"MovieLens ratings"}
    assert counts["interactions_created"] == 100_000 + converted

    first = Customer.objects.get(external_id="ML-USER-0001")
    assert first.attributes == {
        "age": 24,
        "gender": "M",
        "occupation": "technician",
        "zip_prefix": "857",
    }
    toy_story = Offer.objects.get(external_id="ML-MOVIE-0001")
    assert (toy_story.title, toy_story.category) == (
        "Toy Story (1995)",
        "Animation,Children's,Comedy",
    )
    assert "1995" in toy_story.description
    assert Offer.objects.get(external_id="ML-MOVIE-0543").title == "Misérables, Les (1995)"
    assert ProfileField.objects.get(name="occupation").data_type == "category"

    consented = ConsentRecord.objects.values("customer").distinct().count()
    assert 0.8 * 943 < consented < 943
    assert set(ConsentRecord.objects.values_list("source", flat=True)) == {"demo"}


@needs_movielens
@pytest.mark.slow
def test_it_changes_no_counts_when_movielens_100k_is_imported_again():
    first = movielens_load(folder=MOVIELENS)
    again = movielens_load(folder=MOVIELENS)

    assert again["customers_created"] == again["offers_created"] == 0
    assert again["consents_added"] == again["interactions_created"] == 0
    assert (Customer.objects.count(), Offer.objects.count()) == (943, 1682)
    assert Interaction.objects.count() == first["impressions"] + first["conversions"]


def test_it_gives_the_same_consents_with_the_same_seed_given_at_the_first_rating(tmp_path):
    data = read_movielens(make_folder(tmp_path / "ml"))
    now = timezone.now()

    assert customer_records(data, now) == customer_records(data, now)
    second_user = customer_records(data, now)[1]
    assert second_user.consents, "the seeded history of this user states something"
    assert min(s.effective_at for s in second_user.consents) == datetime.fromtimestamp(
        891717742, UTC
    )


def test_the_command_prints_what_it_wrote_and_the_rerun_leaves_the_same_rows(tmp_path, capsys):
    folder = make_folder(tmp_path / "ml")
    call_command("import_movielens", str(folder))
    out = capsys.readouterr().out
    assert "2 customers (2 new)" in out and "3 movies (3 new)" in out
    assert "4 ratings as impressions and 2 as conversions" in out
    rows = stored()

    call_command("import_movielens", str(folder))
    assert "(0 interactions new)" in capsys.readouterr().out
    assert stored() == rows
    assert AuditEvent.objects.filter(action="import", target_type="movielens").count() == 2


def test_it_reads_genres_release_years_and_zip_prefixes(tmp_path):
    movielens_load(folder=make_folder(tmp_path / "ml"))

    offers = {o.external_id: o for o in Offer.objects.all()}
    assert offers["ML-MOVIE-0002"].category == "Action,Comedy"
    assert (offers["ML-MOVIE-0003"].category, offers["ML-MOVIE-0003"].description) == ("", "")
    canadian = Customer.objects.get(external_id="ML-USER-0002")
    assert canadian.attributes["zip_prefix"] == "V3N"
    rated = Interaction.objects.filter(customer=canadian, offer__external_id="ML-MOVIE-0001")
    assert {(r.kind, r.occurred_at) for r in rated} == {
        ("impression", datetime(1998, 4, 4, 19, 22, 22, tzinfo=UTC)),
        ("conversion", datetime(1998, 4, 4, 19, 22, 22, tzinfo=UTC)),
    }


def test_it_names_the_file_line_and_column_of_a_bad_cell_and_writes_nothing(tmp_path):
    folder = make_folder(tmp_path / "ml", u_data="1\t1\t5\t881250949\n2\t3\tfive\t891717743\n")

    with pytest.raises(IngestError, match=r"u\.data line 2, column 3 \(rating\): 'five'"):
        movielens_load(folder=folder)
    assert not Customer.objects.exists() and not Offer.objects.exists()
    assert not AuditEvent.objects.filter(target_type="movielens").exists()


def test_it_refuses_a_rating_of_a_movie_the_folder_does_not_have(tmp_path):
    folder = make_folder(tmp_path / "ml", u_data="1\t9\t5\t881250949\n")

    with pytest.raises(IngestError, match=r"u\.data line 1, column 2 \(movie id\): '9'"):
        movielens_load(folder=folder)


def test_it_refuses_a_line_with_too_few_columns(tmp_path):
    folder = make_folder(tmp_path / "ml", u_user="1|24|M|technician|85711\n2|53|F\n")

    with pytest.raises(IngestError, match=r"u\.user line 2: 3 columns where 5"):
        movielens_load(folder=folder)


def test_the_command_names_a_missing_file(tmp_path):
    folder = make_folder(tmp_path / "ml", u_item=None)

    with pytest.raises(CommandError, match=r"u\.item not found"):
        call_command("import_movielens", str(folder))
    assert not Customer.objects.exists()


def test_the_command_names_a_folder_that_is_not_there(tmp_path):
    with pytest.raises(CommandError, match=r"ml-100k is not a folder"):
        call_command("import_movielens", str(tmp_path / "ml-100k"))
