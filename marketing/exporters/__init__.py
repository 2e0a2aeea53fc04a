"""Audience files for ad platforms: per-platform normalisers and streaming writers.

Pure Python, no database: the services hand in ``Member`` rows and an open text stream.
Rules per platform follow the platforms' documentation (see the module of each platform).
"""
