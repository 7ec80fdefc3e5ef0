"""Persistence and the job queue: the only place with SQL.

db.api (the app and the CLI), db.engine (URL, one engine per process, migrations), db.models (the
tables), db.results (RESULT.json <-> rows), db.artifacts (.npz files under the data folder),
db.jobs (state changes a worker makes), db.queue (Huey), db.worker (the worker loop, heartbeats,
recovery). docs/database.md describes how they fit together.
"""
