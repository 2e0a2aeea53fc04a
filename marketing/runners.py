"""Imports every module that registers a job runner, so workers know all job kinds."""
