"""The ``nmtune`` command: serve, migrate, keys, worker."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nmtune.service.db.session import Database
from nmtune.service.settings import get_settings


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from nmtune.service.app import SCHEMA_OUT_OF_DATE, create_app
    from nmtune.service.ops.logging import configure_logging

    settings = get_settings()
    if not settings.auto_migrate and not _schema_up_to_date():
        # the app would refuse to start too (SchemaOutOfDate), at the end of a traceback
        sys.stderr.write(f"nmtune serve: {SCHEMA_OUT_OF_DATE}\n")
        return 3
    configure_logging(settings.log_level, settings.log_json, settings.secret_values())
    from nmtune.service.ops.http_protocol import ENVELOPE_PROTOCOL

    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        http=ENVELOPE_PROTOCOL,  # uvicorn's own 400s in the error envelope
    )
    return 0


def cmd_migrate(_: argparse.Namespace) -> int:
    from nmtune.service.db.migrate import upgrade

    upgrade(get_settings().database_url.get_secret_value())
    _out("database schema is up to date")
    return 0


def _db() -> Database:
    return Database(get_settings().database_url.get_secret_value())


def _schema_up_to_date() -> bool:
    from nmtune.service.db import migrate

    db = _db()
    try:
        return migrate.is_up_to_date(db.engine, db.url)
    finally:
        db.dispose()


def cmd_keys(args: argparse.Namespace) -> int:
    from nmtune.service.auth import service as auth

    db = _db()
    try:
        with db.session() as s:
            if args.keys_cmd == "create":
                k = auth.create_key(s, args.tenant, name=args.name)
                _out(
                    f"key_id: {k.key_id}\ntenant: {k.tenant_name}\napi_key: {k.key}\n"
                    "(the key is shown once; store it now)"
                )
            elif args.keys_cmd == "list":
                for info in auth.list_keys(s, args.tenant):
                    state = "revoked" if info.revoked_at else "active"
                    _out(
                        f"{info.key_id}\t{info.tenant_name}\t{info.prefix}...\t{state}\t"
                        f"{info.created_at:%Y-%m-%d %H:%M}\t{info.name}"
                    )
            elif args.keys_cmd == "revoke":
                if not auth.revoke_key(s, args.key_id):
                    sys.stderr.write(f"no key {args.key_id}\n")
                    return 1
                _out(f"revoked {args.key_id}")
    finally:
        db.dispose()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from nmtune.service.worker.main import run_worker

    return run_worker(queues=args.queues, concurrency=args.concurrency)


def _tenant_name(value: str) -> str:
    from nmtune.service.auth.service import check_tenant_name

    try:
        return check_tenant_name(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nmtune", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the API (and the in-process job runner)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.set_defaults(func=cmd_serve)
    m = sub.add_parser("migrate", help="apply database migrations")
    m.set_defaults(func=cmd_migrate)
    k = sub.add_parser("keys", help="manage API keys")
    ks = k.add_subparsers(dest="keys_cmd", required=True)
    kc = ks.add_parser("create", help="create a key (and its tenant if new)")
    kc.add_argument("--tenant", required=True, type=_tenant_name)
    kc.add_argument("--name", default="")
    kl = ks.add_parser("list", help="list keys")
    kl.add_argument("--tenant", default=None)
    kr = ks.add_parser("revoke", help="revoke a key")
    kr.add_argument("key_id")
    k.set_defaults(func=cmd_keys)
    w = sub.add_parser("worker", help="run a Celery worker (NMTUNE_RUNNER=celery)")
    w.add_argument("--queues", default=None, help="comma-separated queue names")
    w.add_argument("--concurrency", type=int, default=1)
    w.set_defaults(func=cmd_worker)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
