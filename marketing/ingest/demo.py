"""The bundled demo data: the UCI Bank Marketing calls as customers, an offer and responses.

bank-additional-full.csv (CC BY 4.0, Moro, Cortez & Rita 2014; see marketing/demo/
ATTRIBUTION.txt) has one row per telemarketing call, May 2008 to November 2010, in date
order. Each row becomes a customer (synthetic id BANK-000001, ...; the file has no personal
identifiers and none are invented), an impression of the "Term deposit" offer at the call,
and a conversion when the client subscribed (y = "yes"). Consent records are synthetic,
seeded so that a run is repeatable. Loading twice leaves the same rows: everything goes
through the ingest writers, which upsert.
"""

import calendar
import csv
import gzip
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import islice
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from marketing.ingest.catalogue import AttributeSpec, catalogue_attributes
from marketing.ingest.fields import attribute_name
from marketing.ingest.values import PROFILE_PARSERS, TEXT, common_values, guess_type
from marketing.ingest.writers import (
    ConsentStatement,
    CustomerRecord,
    CustomerWriter,
    InteractionRecord,
    InteractionWriter,
    OfferRecord,
    OfferWriter,
)
from marketing.models import ConsentRecord, Interaction, Purpose

DEMO_FILE = Path(__file__).resolve().parent.parent / "demo" / "bank-additional-full.csv.gz"
OFFER_ID = "TERM-DEPOSIT"
CAMPAIGN = "Bank telemarketing 2008-2010"
# "y" is the outcome (it becomes a conversion, not an attribute). "duration" is the length
# of the call, known only once the call is over and almost decisive for y: as a profile
# attribute it would leak the answer into every model trained on the demo.
LEFT_OUT = {"y", "duration"}
LABELS = {
    "age": "Age",
    "job": "Job",
    "marital": "Marital status",
    "education": "Education",
    "default": "Has credit in default",
    "housing": "Has a housing loan",
    "loan": "Has a personal loan",
    "contact": "Contact channel",
    "month": "Month of last contact",
    "day_of_week": "Weekday of last contact",
    "campaign": "Contacts in this campaign",
    "pdays": "Days since a previous campaign's contact (999 = never)",
    "previous": "Contacts before this campaign",
    "poutcome": "Outcome of the previous campaign",
    "emp_var_rate": "Employment variation rate (quarterly)",
    "cons_price_idx": "Consumer price index (monthly)",
    "cons_conf_idx": "Consumer confidence index (monthly)",
    "euribor3m": "Euribor 3-month rate",
    "nr_employed": "Number employed, thousands (quarterly)",
}
MONTHS = {name: number for number, name in enumerate(calendar.month_abbr) if name}
WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4}
FIRST_YEAR = 2008
SEED = 20140301
CHUNK = 10_000

# Share of customers with a statement per purpose: (granted, denied); the rest said nothing.
CONSENT_SHARES = {
    Purpose.MODEL_TRAINING: (0.85, 0.07),
    Purpose.EMAIL_MARKETING: (0.70, 0.15),
    Purpose.AD_TARGETING: (0.60, 0.15),
    Purpose.PROFILING: (0.55, 0.10),
}
# Google's EEA signals, asked only of people who accepted ad targeting.
AD_SIGNALS_SHARE = 0.80
WITHDRAWN_LATER = 0.05
EXPIRING = 0.04


@dataclass
class BankRow:
    number: int  # 1-based position in the file
    values: dict[str, str]
    called_at: datetime

    @property
    def external_id(self) -> str:
        return f"BANK-{self.number:06d}"


def read_bank_rows(path: Path = DEMO_FILE, limit: int | None = None) -> list[BankRow]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=";")
        rows = [dict(row) for row in islice(reader, limit)]
    return [
        BankRow(number, values, called_at)
        for number, (values, called_at) in enumerate(
            zip(rows, call_times(rows), strict=True), start=1
        )
    ]


def call_times(rows: list[dict[str, str]]) -> Iterator[datetime]:
    """Approximate call times. The file gives month and weekday only, in date order: a new
    year starts when the month goes back, a new week when the weekday goes back; calls of a
    day are spread over office hours."""
    year, month, week, weekday, slot = FIRST_YEAR, 0, 0, -1, 0
    for row in rows:
        row_month, row_weekday = MONTHS[row["month"].title()], WEEKDAYS[row["day_of_week"]]
        if row_month < month:
            year += 1
        if row_month != month:
            week, weekday, slot = 0, -1, 0
        elif row_weekday < weekday:
            week += 1
        if (row_month, row_weekday) != (month, weekday):
            slot = 0
        month, weekday = row_month, row_weekday
        yield timezone.make_aware(
            datetime.combine(_weekday_in_month(year, month, weekday, week), datetime.min.time())
            + timedelta(hours=9, minutes=slot % 540)
        )
        slot += 1


def _weekday_in_month(year: int, month: int, weekday: int, week: int) -> date:
    first = date(year, month, 1)
    day = first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * week)
    while day.month != month:  # more weeks of calls than the month has: stay in its last
        day -= timedelta(days=7)
    return day


def consent_history(
    rng: random.Random, called_at: datetime, now: datetime
) -> list[ConsentStatement]:
    """A plausible, seeded consent history for one demo customer, given at the call."""
    notice = "2008-05" if called_at.year < 2010 else "2010-01"
    statements: list[ConsentStatement] = []

    def state(purpose: str, status: str) -> None:
        expires = None
        if status == ConsentRecord.Status.GRANTED and rng.random() < EXPIRING:
            expires = called_at + timedelta(days=365)
        statements.append(ConsentStatement(purpose, status, called_at, expires, notice))
        if status == ConsentRecord.Status.GRANTED and rng.random() < WITHDRAWN_LATER:
            withdrawn = called_at + timedelta(days=rng.randrange(30, 720))
            if withdrawn < now:
                statements.append(
                    ConsentStatement(
                        purpose, ConsentRecord.Status.WITHDRAWN, withdrawn, None, notice
                    )
                )

    for purpose, (granted, denied) in CONSENT_SHARES.items():
        draw = rng.random()
        if draw < granted:
            state(purpose, ConsentRecord.Status.GRANTED)
        elif draw < granted + denied:
            state(purpose, ConsentRecord.Status.DENIED)
    ad_targeting = [s for s in statements if s.purpose == Purpose.AD_TARGETING]
    if ad_targeting and ad_targeting[0].status == ConsentRecord.Status.GRANTED:
        for purpose in (Purpose.AD_USER_DATA, Purpose.AD_PERSONALIZATION):
            if rng.random() < AD_SIGNALS_SHARE:
                state(purpose, ConsentRecord.Status.GRANTED)
    return statements


def load_demo_data(*, limit: int | None = None) -> dict[str, int]:
    """Load (or refresh) the demo data; returns what was written."""
    rows = read_bank_rows(limit=limit)
    columns = [c for c in rows[0].values if c not in LEFT_OUT] if rows else []
    types = {c: guess_type(row.values[c] for row in rows) for c in columns}
    parsers = {c: PROFILE_PARSERS[types[c]] for c in columns}
    names = {c: attribute_name(c) for c in columns}
    rng = random.Random(SEED)
    now = timezone.now()

    customers = [
        CustomerRecord(
            row.external_id,
            {names[c]: parsers[c](row.values[c]) for c in columns},
            consents=consent_history(rng, row.called_at, now),
        )
        for row in rows
    ]
    interactions = [
        InteractionRecord(row.external_id, OFFER_ID, kind, row.called_at, campaign=CAMPAIGN)
        for row in rows
        for kind in (Interaction.Kind.IMPRESSION, Interaction.Kind.CONVERSION)
        if kind == Interaction.Kind.IMPRESSION or row.values["y"] == "yes"
    ]
    offer = OfferRecord(
        OFFER_ID,
        "Term deposit",
        category="savings",
        description="Fixed-term savings deposit, offered by phone.",
    )

    with (
        CustomerWriter(source=ConsentRecord.Source.DEMO, now=now) as customer_writer,
        OfferWriter(now=now) as offer_writer,
        InteractionWriter() as interaction_writer,
        transaction.atomic(),
    ):
        offer_writer.write(offer_writer.prepare([offer]))
        for start in range(0, len(customers), CHUNK):
            customer_writer.write(customer_writer.prepare(customers[start : start + CHUNK]))
        for start in range(0, len(interactions), CHUNK):
            interaction_writer.write(
                interaction_writer.prepare(interactions[start : start + CHUNK])
            )
        catalogue_attributes(
            AttributeSpec(
                names[c],
                LABELS.get(names[c], c),
                types[c],
                tuple(common_values(row.values[c] for row in rows)) if types[c] == TEXT else (),
            )
            for c in columns
        )
    return {
        "customers": len(customers),
        "customers_created": customer_writer.counts["created"],
        "consents_added": customer_writer.counts["consents_added"],
        "interactions": len(interactions),
        "interactions_created": interaction_writer.counts["created"],
    }
