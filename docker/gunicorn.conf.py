"""gunicorn's settings for the web app: the Dockerfile's command reads them, and
bench/nbo_latency.py starts its server with them (command-line options override them)."""

import os

bind = "0.0.0.0:8000"
# One synchronous worker per core this process may run on (WEB_CONCURRENCY sets another
# number). A web request computes rather than waits (indexed reads, one person's scores;
# long work is a job), so workers beyond the cores only take turns on them and stretch every
# answer: bench/nbo_latency.py on 2 cores, 20 clients back to back, gave 688 requests/s and
# p99 36 ms with 2 workers against 608 requests/s and p99 44 ms with 3.
cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
workers = int(os.environ.get("WEB_CONCURRENCY") or cores or 1)
timeout = 120
# The access log names the path only (%(U)s): no query string, referrer or user agent, which
# carry searched external ids and e-mail addresses that a log cannot forget after an erasure.
accesslog = "-"
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(D)s'

# A web request computes on one thread (long work is a job on the workers). The numeric
# libraries' thread pools (OpenMP, OpenBLAS, MKL) would otherwise start a thread per core in
# every web process and keep them spinning after each small computation: the next best
# offers took 4.8 ms of CPU per request with them and 3.6 ms without (bench/nbo_latency.py).
# Set in the master, before the workers start and import them.
for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(name, "1")


def post_worker_init(worker):
    """Before a worker takes requests: the next best offers' model in use loaded (else its
    first request would wait a second or two), then everything loaded so far moved out of
    the garbage collector's sight. A full collection walks every object a worker holds: with
    the MovieLens model loaded, 390,000 of them and 190 ms during which the worker answers
    nobody; frozen, 0.5 ms."""
    import gc

    from django.db import connections

    from marketing.services.next_best_offers import warm_up

    try:
        loaded = warm_up()
    except Exception:  # the database may not be up yet: the first request loads then
        worker.log.exception("The next best offers' model was not loaded before the first request")
        connections.close_all()
    else:
        worker.log.info("Next best offers ready for: %s", ", ".join(loaded) or "no model in use")
    gc.collect()
    gc.freeze()
