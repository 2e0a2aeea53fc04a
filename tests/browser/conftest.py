from concurrent.futures import wait
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture(autouse=True)
def _allow_sync_db_access_beside_playwright(monkeypatch):
    """Playwright's sync API runs an event loop in the test thread; Django would then refuse
    database access from that thread as "async-unsafe" although no coroutine touches it.
    Only the browser tests get this, and only while they run."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _no_job_outlives_its_test(request):
    """The in-process queue's lanes belong to the whole test process: a job a test started
    and did not wait for (a re-training it only checks was queued) would hold the long lane
    while the next test's jobs wait behind it. After each browser test, its unfinished jobs
    are cancelled and both lanes drained, before its database is flushed."""
    if "live_server" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("transactional_db")
    yield
    from marketing.models import Job
    from marketing.services import jobs

    Job.objects.filter(status=Job.Status.QUEUED).update(status=Job.Status.CANCELLED)
    Job.objects.filter(status=Job.Status.RUNNING).update(cancel_requested=True)
    lanes = [executor.submit(lambda: None) for executor in list(jobs._executors.values())]
    _, stuck = wait(lanes, timeout=300)
    assert not stuck, "a job of this test still holds the in-process queue after 5 minutes"


@pytest.fixture
def browser_page():
    """A fresh headless Chromium page (Debian's chromium; Playwright never downloads one)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(20_000)
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        try:
            yield page
        finally:
            browser.close()


@pytest.fixture
def screenshot():
    """Save a full-page screenshot of a visited page for the reviewer."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take
