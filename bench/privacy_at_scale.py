"""Privacy paths on a large customer base, as a steward's and a viewer's clicks run them.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_privacy \\
        .venv/bin/python bench/privacy_at_scale.py

Needs a database that already holds the customers, e.g. the one
``bench/ingest_customers.py --keep --database bench_privacy`` leaves (1,000,000 customers
through the product's import). Times, through the Django test client with the product's
settings: the customer page and the portability download (``GET
/api/customers/<id>/portability/``) as a data steward, the overview and the customer list as a
viewer (every count through the small-group rule), and the erasure of one customer
(``customer_erase``, what the console's erase runs). The baseline in the same run is a bare
delete of another customer's rows, without the scrub of copies, files and logs. Prints JSON.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import logged_in_client, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="page calls per figure (best)")
    args = parser.parse_args()
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="bench-privacy-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing.settings")
    import django

    django.setup()
    from django.test import Client
    from django.test.utils import setup_test_environment

    from marketing.models import Customer
    from marketing.roles import DATA_STEWARD, VIEWER
    from marketing.services.erasure import customer_erase

    setup_test_environment()
    customers = Customer.objects.count()
    if customers < 1000:
        sys.exit("The database holds too few customers; load them first (see the docstring).")

    steward_client, steward = logged_in_client("bench-steward", DATA_STEWARD)
    viewer_client, _ = logged_in_client("bench-viewer", VIEWER)
    ids = list(Customer.objects.order_by("-pk").values_list("pk", flat=True)[:2])
    person, other = ids

    def page(client: Client, url: str) -> float:
        best = None
        for _ in range(args.repeat):
            seconds, response = timed(lambda: client.get(url))
            assert response.status_code == 200, (url, response.status_code)
            best = seconds if best is None else min(best, seconds)
        return best

    figures = {
        "customers": customers,
        "customer_page_steward_s": page(steward_client, f"/customers/{person}/"),
        "portability_download_s": page(steward_client, f"/api/customers/{person}/portability/"),
        "overview_viewer_s": page(viewer_client, "/"),
        "customer_list_viewer_s": page(viewer_client, "/customers/"),
    }
    figures["erasure_s"], counts = timed(
        lambda: customer_erase(customer=Customer.objects.get(pk=person), by=steward)
    )
    figures["erasure_counts"] = counts
    figures["baseline_bare_delete_s"], _ = timed(lambda: Customer.objects.filter(pk=other).delete())
    figures["pages_under_500_ms"] = all(
        figures[key] < 0.5
        for key in (
            "customer_page_steward_s",
            "portability_download_s",
            "overview_viewer_s",
            "customer_list_viewer_s",
        )
    )
    print(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
