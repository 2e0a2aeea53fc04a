"""MovieLens 100K, from a folder the user downloaded, as customers, offers and responses.

GroupLens' ml-100k (Harper & Konstan 2015) may not be redistributed, so it is never shipped:
the user downloads it and points ``manage.py import_movielens`` at the folder. Its 943 users
(u.user) become customers ML-USER-0001, ...; its 1,682 movies (u.item, with the genre names
of u.genre) offers ML-MOVIE-0001, ...; each of its 100,000 ratings (u.data) an impression of
the movie at the rating's time, and a conversion as well when the movie was rated 4 or 5.
Consent records are synthetic, seeded as for the bank demo and given at each user's first
rating. Every file is read and checked before anything is written, and everything is
written in one transaction through the ingest writers, which upsert: a bad file writes
nothing, and loading twice leaves the same rows.
"""

import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone

from marketing.ingest import IngestError
from marketing.ingest.catalogue import AttributeSpec, catalogue_attributes
from marketing.ingest.demo import CHUNK, consent_history
from marketing.ingest.values import CATEGORY, NUMBER, common_values
from marketing.ingest.writers import (
    CustomerRecord,
    CustomerWriter,
    InteractionRecord,
    InteractionWriter,
    OfferRecord,
    OfferWriter,
    Writer,
)
from marketing.models import ConsentRecord, Interaction
from marketing.services.recommendations import CATEGORY_SEPARATOR

USERS, MOVIES, RATINGS, GENRES = "u.user", "u.item", "u.data", "u.genre"
FILES = (USERS, MOVIES, RATINGS, GENRES)
# u.item is Latin-1 (Misérables); the other files are ASCII, which Latin-1 reads alike.
ENCODING = "latin-1"
CAMPAIGN = "MovieLens ratings"
# A rating of 4 or 5 is taken as a conversion, as recengine's MovieLens bench takes a click.
CONVERTED_FROM = 4
# Ratings were collected from September 1997 to April 1998 under one privacy notice.
NOTICE = "1997-09"
SEED = 19970919
LABELS = {
    "age": "Age",
    "gender": "Gender",
    "occupation": "Occupation",
    "zip_prefix": "ZIP code (first 3 characters)",
}
# u.item: id, title, release date, video release date, IMDb URL, then one 0/1 per genre.
MOVIE_COLUMNS = ("movie id", "title", "release date", "video release date", "IMDb URL")
# "unknown" is the flag of movies without a genre, not a genre they share.
NO_GENRE = "unknown"

T = TypeVar("T")


@dataclass(frozen=True)
class MovieLensUser:
    number: int
    age: int
    gender: str
    occupation: str
    zip_code: str

    @property
    def external_id(self) -> str:
        return f"ML-USER-{self.number:04d}"

    @property
    def attributes(self) -> dict[str, Any]:
        # The full ZIP code with age and gender singles out most people; its first three
        # characters name an area of usually more than 20,000 (as the HIPAA de-identification
        # rule keeps it), enough to segment by region.
        return {
            "age": self.age,
            "gender": self.gender,
            "occupation": self.occupation,
            "zip_prefix": self.zip_code[:3].upper(),
        }


@dataclass(frozen=True)
class Movie:
    number: int
    title: str  # as in the file, with the year: "Toy Story (1995)"
    year: int | None  # of the release date; None when the file gives none
    genres: tuple[str, ...]

    @property
    def external_id(self) -> str:
        return f"ML-MOVIE-{self.number:04d}"

    @property
    def record(self) -> OfferRecord:
        return OfferRecord(
            self.external_id,
            self.title,
            category=CATEGORY_SEPARATOR.join(self.genres),
            description=f"Movie released in {self.year}." if self.year else "",
        )


@dataclass(frozen=True)
class Rating:
    user: int
    movie: int
    stars: int
    rated_at: datetime


@dataclass
class MovieLens:
    users: list[MovieLensUser]
    movies: list[Movie]
    ratings: list[Rating]


class _Line:
    """One line of a MovieLens file, split into cells; its readers name the file, line and
    column of a bad cell."""

    def __init__(self, path: Path, number: int, cells: list[str]) -> None:
        self.path, self.number, self.cells = path, number, cells

    def read(self, column: int, name: str, parse: Callable[[str], T]) -> T:
        """Cell ``column`` (1-based) read by ``parse``, which raises ValueError with what
        is wrong."""
        text = self.cells[column - 1]
        try:
            return parse(text)
        except ValueError as exc:
            raise self.error(f"column {column} ({name}): '{text}' {exc}.") from None

    def error(self, problem: str) -> IngestError:
        return IngestError(f"{self.path} line {self.number}, {problem}")


def _lines(folder: Path, name: str, separator: str, columns: int) -> Iterator[_Line]:
    path = folder / name
    if not path.is_file():
        raise IngestError(
            f"{path} not found: a MovieLens 100K folder holds {', '.join(FILES)} "
            "(download ml-100k from GroupLens and unzip it)."
        )
    with path.open(encoding=ENCODING, newline="") as handle:
        for number, text in enumerate(handle, start=1):
            text = text.rstrip("\r\n")
            if not text:  # u.genre ends with a blank line
                continue
            cells = text.split(separator)
            if len(cells) != columns:
                raise IngestError(
                    f"{path} line {number}: {len(cells)} columns where {columns} were expected."
                )
            yield _Line(path, number, cells)


def _whole_number(text: str) -> int:
    if not text.isdecimal():
        raise ValueError("is not a whole number")
    return int(text)


def _one_of(*allowed: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"is not one of {', '.join(allowed)}")
        return text

    return check


def _filled(text: str) -> str:
    if not text.strip():
        raise ValueError("is empty")
    return text.strip()


def _stars(text: str) -> int:
    if text not in {"1", "2", "3", "4", "5"}:
        raise ValueError("is not a rating from 1 to 5")
    return int(text)


def _unix_time(text: str) -> datetime:
    try:
        return datetime.fromtimestamp(_whole_number(text), UTC)
    except (OverflowError, OSError):
        raise ValueError("is not a Unix time") from None


def _release_year(text: str) -> int | None:
    """The year of a release date such as 01-Jan-1995 (blank: not known)."""
    if not text:
        return None
    year = text.rsplit("-", 1)[-1]
    if text.count("-") != 2 or len(year) != 4 or not year.isdecimal():
        raise ValueError("is not a date such as 01-Jan-1995")
    return int(year)


def _known(ids: set[int], where: str) -> Callable[[str], int]:
    def check(text: str) -> int:
        number = _whole_number(text)
        if number not in ids:
            raise ValueError(f"is not in {where}")
        return number

    return check


def _unique(lines: Iterator[_Line], column: int, name: str) -> Iterator[tuple[_Line, int]]:
    seen: dict[int, int] = {}
    for line in lines:
        number = line.read(column, name, _whole_number)
        if number in seen:
            raise line.error(
                f"column {column} ({name}): {number} is already on line {seen[number]}."
            )
        seen[number] = line.number
        yield line, number


def read_genres(folder: Path) -> list[str]:
    """Genre names in the order of u.item's genre columns."""
    genres: list[str] = []
    for line in _lines(folder, GENRES, "|", 2):
        name = line.read(1, "genre", _filled)
        line.read(2, "position", _one_of(str(len(genres))))
        genres.append(name)
    return genres


def read_users(folder: Path) -> list[MovieLensUser]:
    return [
        MovieLensUser(
            number,
            age=line.read(2, "age", _whole_number),
            gender=line.read(3, "gender", _one_of("F", "M")),
            occupation=line.read(4, "occupation", _filled),
            zip_code=line.read(5, "zip code", _filled),
        )
        for line, number in _unique(_lines(folder, USERS, "|", 5), 1, "user id")
    ]


def read_movies(folder: Path, genres: Sequence[str]) -> list[Movie]:
    flag = _one_of("0", "1")
    names = [*MOVIE_COLUMNS, *(f"genre {genre}" for genre in genres)]
    lines = _lines(folder, MOVIES, "|", len(names))
    return [
        Movie(
            number,
            title=line.read(2, names[1], _filled),
            year=line.read(3, names[2], _release_year),
            genres=tuple(
                genre
                for column, genre in enumerate(genres, start=len(MOVIE_COLUMNS) + 1)
                if line.read(column, names[column - 1], flag) == "1" and genre != NO_GENRE
            ),
        )
        for line, number in _unique(lines, 1, names[0])
    ]


def read_ratings(folder: Path, users: set[int], movies: set[int]) -> list[Rating]:
    ratings = []
    # The same rating twice would be the same impression twice in one upsert.
    seen: dict[tuple[int, int, datetime], int] = {}
    for line in _lines(folder, RATINGS, "\t", 4):
        rating = Rating(
            line.read(1, "user id", _known(users, USERS)),
            line.read(2, "movie id", _known(movies, MOVIES)),
            line.read(3, "rating", _stars),
            line.read(4, "timestamp", _unix_time),
        )
        key = (rating.user, rating.movie, rating.rated_at)
        if key in seen:
            raise line.error(f"the same rating as on line {seen[key]}.")
        seen[key] = line.number
        ratings.append(rating)
    return ratings


def read_movielens(folder: Path) -> MovieLens:
    """Read and check the folder's four files; IngestError names a missing file, or the
    file, line and column of the first bad cell."""
    if not folder.is_dir():
        raise IngestError(f"{folder} is not a folder: name the unzipped ml-100k folder.")
    users = read_users(folder)
    movies = read_movies(folder, read_genres(folder))
    ratings = read_ratings(folder, {u.number for u in users}, {m.number for m in movies})
    return MovieLens(users, movies, ratings)


def customer_records(data: MovieLens, now: datetime) -> list[CustomerRecord]:
    """The users with their profiles and a seeded consent history, given at their first
    rating (a user without ratings states nothing)."""
    first_rated: dict[int, datetime] = {}
    for rating in data.ratings:
        if rating.user not in first_rated or rating.rated_at < first_rated[rating.user]:
            first_rated[rating.user] = rating.rated_at
    rng = random.Random(SEED)
    return [
        CustomerRecord(
            user.external_id,
            user.attributes,
            consents=[
                statement._replace(notice_version=NOTICE)
                for statement in consent_history(rng, first_rated[user.number], now)
            ]
            if user.number in first_rated
            else (),
        )
        for user in data.users
    ]


def interaction_records(data: MovieLens) -> list[InteractionRecord]:
    users = {user.number: user.external_id for user in data.users}
    movies = {movie.number: movie.external_id for movie in data.movies}
    return [
        InteractionRecord(
            users[rating.user], movies[rating.movie], kind, rating.rated_at, campaign=CAMPAIGN
        )
        for rating in data.ratings
        for kind in (Interaction.Kind.IMPRESSION, Interaction.Kind.CONVERSION)
        if kind == Interaction.Kind.IMPRESSION or rating.stars >= CONVERTED_FROM
    ]


def attribute_specs(users: Sequence[MovieLensUser]) -> list[AttributeSpec]:
    profiles = [user.attributes for user in users]
    return [
        AttributeSpec("age", LABELS["age"], NUMBER),
        *(
            AttributeSpec(
                name, LABELS[name], CATEGORY, tuple(common_values(p[name] for p in profiles))
            )
            for name in ("gender", "occupation", "zip_prefix")
        ),
    ]


def _write_in_chunks(writer: Writer, records: Sequence[Any]) -> None:
    for start in range(0, len(records), CHUNK):
        writer.write(writer.prepare(records[start : start + CHUNK]))


def load_movielens(folder: Path) -> dict[str, int]:
    """Load (or refresh) MovieLens 100K from ``folder``; returns what was written."""
    data = read_movielens(Path(folder))
    now = timezone.now()
    customers = customer_records(data, now)
    offers = [movie.record for movie in data.movies]
    interactions = interaction_records(data)

    with (
        CustomerWriter(source=ConsentRecord.Source.DEMO, now=now) as customer_writer,
        OfferWriter(now=now) as offer_writer,
        InteractionWriter() as interaction_writer,
        transaction.atomic(),
    ):
        _write_in_chunks(offer_writer, offers)
        _write_in_chunks(customer_writer, customers)
        _write_in_chunks(interaction_writer, interactions)
        catalogue_attributes(attribute_specs(data.users))
    kinds = Counter(record.kind for record in interactions)
    return {
        "customers": len(customers),
        "customers_created": customer_writer.counts["created"],
        "consents_added": customer_writer.counts["consents_added"],
        "offers": len(offers),
        "offers_created": offer_writer.counts["created"],
        "impressions": kinds[Interaction.Kind.IMPRESSION],
        "conversions": kinds[Interaction.Kind.CONVERSION],
        "interactions_created": interaction_writer.counts["created"],
    }
