"""The job commands of `python -m backend` (db/'s own; backend/__main__.py adds them): submit,
worker, list, show, cancel, export.

    python -m backend submit --preset toy-bon --seed 3 --name "seed 3"   prints the new id
    python -m backend worker [--device cpu|cuda]                       runs queued experiments
    python -m backend list [--json]
    python -m backend show ID [--json]            --json: the RESULT.json layout plus id, status
    python -m backend cancel ID
    python -m backend export ID --format json|csv [--out FILE]

Every command takes --db URL (any SQLAlchemy URL, or a SQLite file path); the default is
GOODHART_DB_URL, else <GOODHART_DATA_DIR>/goodhart.sqlite3. The queue is SQLite in the data folder,
or Redis when GOODHART_REDIS_URL is set (see db/queue.py).

Exit codes: 0 done; 2 bad input: a malformed or unknown id, a bad option or --db (the message says
which); 1 nothing to do: cancel of a finished experiment, export of one without results.
This module only parses and prints; the queries are db.api's. Database modules are imported
inside the commands, so `python -m backend run` does not load SQLAlchemy.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from backend.cli import add_experiment_options, check_writable, config_from_args
from backend.config import ConfigError
from backend.export import curves_csv

LIST_MAX = 100_000  # `list --limit`


def use_db(args: argparse.Namespace, create: bool = True) -> None:
    """Use --db (when given) for the rest of the process, opened now (and its schema brought
    up to date), so that a bad database is exit 2 before any work: ConfigError naming --db when
    it is not a database URL or file path, its driver is missing, it is in memory, a folder, not
    a database, not writable, cannot be connected to, or (create=False: the commands that only
    read or change existing experiments) a file given explicitly that does not exist."""
    import os

    from sqlalchemy.exc import SQLAlchemyError

    from db.engine import check_url, database_url, display_url, get_engine, set_url

    given = args.db or os.environ.get("GOODHART_DB_URL")
    source = "--db" if args.db else "GOODHART_DB_URL"
    try:
        if given:
            check_url(given, create)
        set_url(args.db)
        get_engine()
    except ValueError as e:
        raise ConfigError("--db", str(e) if args.db else f"{source}: {e}") from None
    except (SQLAlchemyError, OSError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError("--db", f"cannot open {display_url(database_url())}: {first}") from None


def use_queue() -> None:
    """Reach the queue now (submit, worker): ConfigError naming GOODHART_REDIS_URL (or the data
    folder) when it cannot be, before anything is stored or run."""
    import os

    from db import queue

    redis_url = os.environ.get("GOODHART_REDIS_URL")
    try:
        huey = queue.get_huey()
        conn = getattr(huey.storage, "conn", None)
        if redis_url and conn is not None:
            conn.ping()
    except Exception as e:  # huey and redis raise their own types (ValueError, ConnectionError)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        option = "GOODHART_REDIS_URL" if redis_url else "GOODHART_DATA_DIR"
        raise ConfigError(option, f"the job queue cannot be reached: {first}") from None


def _experiment(text: str) -> dict:
    """The experiment of a command-line id, or ConfigError (exit 2) saying what is wrong."""
    from db import api
    from db.engine import display_url

    if not api.is_valid_id(text):
        raise ConfigError(
            "ID",
            f"{text!r} is not an experiment id (ids are {api.ID_LENGTH} characters of a-z and "
            "2-9, without l and o; `python -m backend list` shows them)",
        )
    exp = api.get_experiment(text)
    if exp is None:
        raise ConfigError("ID", f"no experiment {text} in {display_url()}")
    return exp


def show_layout(exp: dict) -> dict:
    """`show --json`: the RESULT.json layout plus id and status (before the result exists: the
    config, progress, stage and error)."""
    out = {"id": exp["id"], "status": exp["status"]}
    if exp["result"] is not None:
        return {**out, **exp["result"]}
    return {**out, **{k: exp[k] for k in ("name", "progress", "stage", "error", "config")}}


# ---- commands -----------------------------------------------------------------------------------


def cmd_submit(args: argparse.Namespace) -> int:
    from db import api

    use_db(args)
    use_queue()
    if args.name is not None and len(args.name) > api.NAME_MAX:
        raise ConfigError("--name", f"at most {api.NAME_MAX} characters, got {len(args.name)}")
    cfg = config_from_args(args)  # db.api.submit adds the world's checks and the limits
    print(api.submit(cfg, name=args.name))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    use_db(args)
    use_queue()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("huey").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines on every new database
    from db.artifacts import SETTING, place
    from db.engine import database_url
    from db.worker import serve

    try:
        place(database_url())  # a bad GOODHART_ARTIFACTS: say so now, not after a whole run
    except ValueError as e:
        raise ConfigError(SETTING, str(e).removeprefix(f"{SETTING}: ")) from None
    serve(args.device)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= LIST_MAX:
        raise ConfigError("--limit", f"must be between 1 and {LIST_MAX}; got {args.limit}")
    use_db(args, create=False)
    from db import api

    rows = api.list_experiments(limit=args.limit)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'ID':12s}  {'STATUS':9s}  PROG  {'CREATED (UTC)':16s}  SEED  NAME / STAGE")
    for r in rows:
        created = r["created_at"][:16].replace("T", " ")
        seed = r["config"].get("seed", "")
        label = r["name"] or r["stage"] or ""
        print(f"{r['id']}  {r['status']:9s}  {r['progress']:4.0%}  {created}  {seed:>4}  {label}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    use_db(args, create=False)
    exp = _experiment(args.id)
    if args.json:
        print(json.dumps(show_layout(exp), indent=1))
        return 0
    cfg = exp["config"]
    print(f"id        {exp['id']}" + (f"  ({exp['name']})" if exp["name"] else ""))
    print(f"status    {exp['status']}  {exp['progress']:.0%}  {exp['stage'] or ''}")
    if exp["status"] == "queued":
        from db import api

        print(f"waiting   {api.waiting_for(exp['id'])}")
    print(f"created   {exp['created_at']}")
    if exp["finished_at"]:
        print(f"finished  {exp['finished_at']}")
    print(f"config    world {cfg['world']}, method {cfg['method']}, seed {cfg['seed']}")
    if exp["error"]:
        print(f"error\n{exp['error']}")
    for label, s in (exp["summary"] or {}).items():
        print(
            f"  {label:18s} gold start {s['gold_start']:+.3f}  peak {s['gold_peak']:+.3f}"
            f"  final {s['gold_final']:+.3f}  overoptimization {s['overoptimization']:.2f}"
        )
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    use_db(args, create=False)
    from db import api

    exp = _experiment(args.id)
    if not api.cancel(exp["id"]):
        print(f"{exp['id']} is already {exp['status']}: nothing to cancel", file=sys.stderr)
        return 1
    if api.get_experiment(exp["id"])["status"] == "cancelled":
        print(f"{exp['id']} cancelled")
    else:
        print(f"{exp['id']}: cancel requested; it stops at its next stage boundary")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    check_writable("--out", args.out)
    use_db(args, create=False)
    exp = _experiment(args.id)
    if exp["result"] is None:
        print(f"{exp['id']} is {exp['status']}: it has no results to export", file=sys.stderr)
        return 1
    if args.format == "json":
        text = json.dumps(show_layout(exp), indent=1) + "\n"
    else:
        text = curves_csv(exp["result"]["curves"])
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the job commands to `python -m backend`'s subcommands."""

    def command(name: str, help: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument(
            "--db",
            metavar="URL",
            help="database URL or SQLite file (default GOODHART_DB_URL, else the data folder's)",
        )
        p.set_defaults(func=func)
        return p

    p = command("submit", "queue an experiment (same options as run); prints its id", cmd_submit)
    add_experiment_options(p)
    p.add_argument("--name", help="a name to show in lists")
    p = command("worker", "run queued experiments until SIGTERM or Ctrl-C", cmd_worker)
    p.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        help="what this worker runs: cuda (a GPU worker: cuda runs first, then the others) or "
        "cpu (never a cuda run; it waits for a GPU worker); default: cuda if torch sees one",
    )
    p = command("list", "the newest experiments", cmd_list)
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, default=200)
    p = command("show", "one experiment", cmd_show)
    p.add_argument("id", metavar="ID")
    p.add_argument("--json", action="store_true", help="the RESULT.json layout plus id, status")
    p = command("cancel", "cancel a queued or running experiment", cmd_cancel)
    p.add_argument("id", metavar="ID")
    p = command("export", "write a finished experiment's results", cmd_export)
    p.add_argument("id", metavar="ID")
    p.add_argument("--format", choices=("json", "csv"), default="json")
    p.add_argument("--out", help="file to write (default: standard output)")
