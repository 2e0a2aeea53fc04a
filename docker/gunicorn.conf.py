"""gunicorn's settings for the web app: the Dockerfile's command reads them, and
bench/nbo_latency.py starts its server with them (command-line options override them)."""

import os

bind = "0.0.0.0:8000"
workers = 3
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
