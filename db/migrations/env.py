"""Alembic environment: runs on any SQLAlchemy URL.

The database is, first that is set: a connection handed over by db.engine.upgrade(), `-x url=...`
on the alembic command line, sqlalchemy.url in the config, or db.engine.database_url()
(GOODHART_DB_URL or the SQLite file under the data folder). SQLite gets the same engine settings
as the app, and batch mode so later migrations can alter its tables.
"""

from alembic import context

from db.engine import database_url, make_engine, normalize_url
from db.models import Base

config = context.config


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    return normalize_url(url or config.get_main_option("sqlalchemy.url") or database_url())


def _configure(**kw) -> None:
    context.configure(
        target_metadata=Base.metadata,
        render_as_batch=True,
        transactional_ddl=True,  # SQLite too: our engine emits BEGIN, so DDL is transactional
        compare_type=True,
        **kw,
    )


def run_offline() -> None:
    _configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    conn = config.attributes.get("connection")
    if conn is not None:
        _configure(connection=conn)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        conn.execution_options(goodhart_write=True)
        _configure(connection=conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
