"""The sub-commands of `watchkeeper`, each a small function over parsed arguments."""

from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import ipaddress
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchkeeper.errors import WatchkeeperError
from watchkeeper.server import DEFAULT_KEY_ROLE, Role

log = logging.getLogger("watchkeeper.cli")


@dataclass(frozen=True)
class Command:
    """A sub-command: how to declare its options and how to run it."""

    name: str
    help: str
    options: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int] | None = None
    passthrough: Callable[[Sequence[str]], int] | None = None

    def add_to(self, sub: Any) -> None:
        """Declare this command on the sub-parser set."""
        self.options(sub.add_parser(self.name, help=self.help))


def _server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML config file (or WATCHKEEPER_CONFIG)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port for OTLP, API and UI (default 4318)")
    p.add_argument("--data-dir", type=Path, help="where data is kept")


def _serve_options(p: argparse.ArgumentParser) -> None:
    _server_options(p)
    p.add_argument(
        "--access-log",
        action="store_true",
        default=None,
        help="log every HTTP request (or server.access_log: true; default off)",
    )
    p.add_argument(
        "--store",
        choices=["duckdb", "clickhouse"],
        help="the span store's engine (or store.backend; default duckdb)",
    )
    p.add_argument(
        "--clickhouse-url",
        help="with --store clickhouse: http(s)://USER:PASSWORD@HOST:8123, or chdb:///PATH "
        "to run the engine in-process (or store.clickhouse_url)",
    )


def _load(args: argparse.Namespace) -> Any:
    from watchkeeper.config import load_config

    server = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if args.data_dir is not None:
        server["data_dir"] = args.data_dir
    if getattr(args, "access_log", None):
        server["access_log"] = True
    store = {
        key: value
        for key, value in (
            ("backend", getattr(args, "store", None)),
            ("clickhouse_url", getattr(args, "clickhouse_url", None)),
        )
        if value is not None
    }
    overrides = {name: part for name, part in (("server", server), ("store", store)) if part}
    return load_config(args.config, overrides=overrides or None)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _auth_host(config: Any, keys: Any) -> str:
    """Where to listen, and a log line that says why: without auth, on loopback only.

    `keys.required` latches: once it is true the server keeps requiring keys until it
    restarts, so the address chosen here stays safe when the last key is revoked.
    """
    host: str = config.server.host
    if keys.required:
        return host
    if config.auth.required is False:
        why = "auth.required is false: API keys are not required" + (
            " (active keys exist; a request that sends one acts for its project)"
            if keys.has_keys()
            else ""
        )
    else:
        why = "no API keys configured"
    if _is_loopback(host):
        log.warning("%s: listening on %s only, without auth", why, host)
        return host
    log.warning(
        "%s: listening on 127.0.0.1 only instead of %s; create a key with "
        "'watchkeeper keys create --project NAME' (and leave auth.required unset) "
        "to listen elsewhere",
        why,
        host,
    )
    return "127.0.0.1"


class _NoPandas(importlib.abc.MetaPathFinder):
    """Answers `import pandas` as if it were not installed."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        """Refuse pandas and its submodules; leave everything else to the other finders."""
        if name.partition(".")[0] == "pandas":
            raise ModuleNotFoundError(f"No module named {name!r} (not in the server)", name=name)


def _without_pandas() -> None:
    """Keep pandas out of the embedded server, which never uses it.

    pyarrow and DuckDB import pandas on first use whenever it is installed (chdb, in the
    clickhouse extra, brings it): measured 45 MiB of the server's RSS for nothing
    (`bench.ingest --quick`: 304 instead of 352 MiB once idle after the burst, 409 instead
    of 454 at peak). Both treat a failed import as "not installed". (A None in `sys.modules`
    does not do: DuckDB reads it from there and fails.) Ingest workers start fresh, without
    this finder; they do not import pandas either.
    """
    if "pandas" not in sys.modules:
        sys.meta_path.insert(0, _NoPandas())


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from watchkeeper.server import configure_logging, header_deadline
    from watchkeeper.server.app import build_services, create_app
    from watchkeeper.vault import Redactor

    config = _load(args)
    if config.store.backend == "duckdb":
        _without_pandas()
    redactor = Redactor()  # learns the channels' secrets as they are read
    configure_logging(config.server.log_level, redactor)
    app = create_app(config, services=build_services(config, redactor=redactor))
    host = _auth_host(config, app.state.services.keys)
    log.info(
        "watchkeeper listening",
        extra={
            "url": f"http://{host}:{config.server.port}",
            "data_dir": str(config.server.data_dir),
        },
    )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the SIGINT it handled
        http = header_deadline(
            config.server.header_timeout_s, app.state.services.ingest.count_slow_client
        )
        uvicorn.run(
            app, host=host, port=config.server.port, log_config=None,
            access_log=config.server.access_log, timeout_graceful_shutdown=10, http=http,
        )  # fmt: skip
    # Everything is closed by now. Skip the interpreter's teardown, where DuckDB's nanobind
    # bindings print a screenful of harmless "leaked functions" warnings over our last logs.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _keys_options(p: argparse.ArgumentParser) -> None:
    _server_options(p)
    p.add_argument("action", choices=["create", "list", "revoke"])
    p.add_argument("--project", help="the project of the new key")
    p.add_argument(
        "--role",
        choices=[r.value for r in Role],
        default=DEFAULT_KEY_ROLE.value,
        help="what the new key may do in its project: ingest (write telemetry only, what an "
        "app holds; the default), viewer (read), editor (viewer and ingest, and rules, "
        "silences, review), admin (editor, and keys and channels)",
    )
    p.add_argument("--name", default="", help="a label for the key")
    p.add_argument("--key-id", help="key to revoke")


def _keys(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from watchkeeper.server import AuditLog, KeyRing, cli_actor, local_origin
    from watchkeeper.store.meta import MetaStore

    config = _load(args)
    meta = MetaStore(config.meta_url)
    meta.create_all()
    ring = KeyRing(meta)
    audit, actor, origin = AuditLog(meta), cli_actor(), local_origin("watchkeeper keys")
    if args.action == "create":
        if not args.project:
            print("keys create needs --project NAME", file=sys.stderr)
            return 2
        with audit.change(actor, origin, "key.create", "key (new)", args.project) as change:
            key, token = ring.create(args.project, args.name, role=Role(args.role))
            change.target, change.after = f"key {key.key_id}", asdict(key)
        print(
            f"created key {key.key_id} with role {key.role} in project {key.project} "
            f"(shown once):\n{token}"
        )
    elif args.action == "list":
        for k in ring.list():
            state = "revoked" if k.revoked_at else "active"
            print(f"{k.key_id}\t{k.project}\t{k.role}\t{k.name}\t{state}")
    else:
        old = ring.get(args.key_id) if args.key_id else None
        if old is None or old.revoked_at is not None:
            print(f"no active key {args.key_id!r}; see: watchkeeper keys list", file=sys.stderr)
            return 1
        target = f"key {old.key_id}"
        with audit.change(actor, origin, "key.revoke", target, old.project) as change:
            ring.revoke(old.key_id)
            change.before, change.after = asdict(old), asdict(ring.get(old.key_id) or old)
        print(f"revoked {args.key_id}")
    return 0


def _audit_options(p: argparse.ArgumentParser) -> None:
    _server_options(p)
    p.add_argument("action", choices=["verify", "export"])
    p.add_argument(
        "--expect",
        metavar="SEQ:HASH",
        help="verify: a head printed by an earlier verify, kept elsewhere; fail unless the "
        "log still holds it (catches a rewrite of the whole chain)",
    )


def _audit(args: argparse.Namespace) -> int:
    """Check the audit log's hash chain (exit 1 naming the first broken entry), or print it
    as JSON lines."""
    import json

    from watchkeeper.server import AuditLog
    from watchkeeper.store.meta import MetaStore

    meta = MetaStore(_load(args).meta_url)
    meta.create_all()
    audit = AuditLog(meta)
    if args.action == "export":
        for entry in audit.entries():
            print(json.dumps(entry.as_json(), ensure_ascii=False))
        return 0
    verdict = audit.verify()
    problem = verdict.problem if not verdict.ok else None
    if problem is None and args.expect:
        seq, _, digest = args.expect.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            print("--expect takes SEQ:HASH as verify prints it", file=sys.stderr)
            return 2
        problem = audit.still_holds(int(seq), digest)
    if problem is not None:
        print(f"audit log broken: {problem}", file=sys.stderr)
        return 1
    head = f"{verdict.head_seq}:{verdict.head_hash}"
    print(
        f"audit log ok: {verdict.entries} entries, head {head} (keep it elsewhere; later: "
        f"watchkeeper audit verify --expect {head})"
    )
    return 0


def _secrets_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["keygen", "seal", "reseal"])
    p.add_argument("file", nargs="?", type=Path, help="reseal: the config file to re-seal")


def _secrets(args: argparse.Namespace) -> int:
    """Make a server key, seal a value read from stdin, or re-seal a file's sealed values
    under the first key (rotation; see watchkeeper.vault)."""
    import shutil

    from watchkeeper.vault import KEY_ENV, SecretBox, generate_key, reseal_text

    if args.action == "keygen":
        print(generate_key())
        return 0
    box = SecretBox.from_env()
    if box is None:
        print(f"set {KEY_ENV} (or {KEY_ENV}_FILE) first: watchkeeper secrets keygen",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.action == "seal":
        # Read from stdin, never from the command line: shells and `ps` keep arguments.
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            print("secrets seal reads the value from stdin; got nothing", file=sys.stderr)
            return 2
        print(box.seal(value))
        return 0
    if args.file is None:
        print("secrets reseal needs the config file", file=sys.stderr)
        return 2
    text, count = reseal_text(args.file.read_text(), box)
    staged = args.file.with_name(args.file.name + ".reseal")
    staged.write_text(text)
    shutil.copymode(args.file, staged)
    staged.replace(args.file)
    print(f"re-sealed {count} values in {args.file} under the first key")
    return 0


def _dead_letter_options(p: argparse.ArgumentParser) -> None:
    _server_options(p)
    p.add_argument("action", choices=["list", "replay"])


def _dead_letter(args: argparse.Namespace) -> int:
    """List the records ingest set aside, or put them back into the spool (server stopped)."""
    from watchkeeper.ingest import DeadLetter, Spool

    data_dir = _load(args).server.data_dir
    letters = DeadLetter(data_dir / "dead-letter")
    if args.action == "list":
        held = list(letters.letters())
        for letter in held:
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(letter.at))
            rec = letter.record
            print(f"{at}\t{rec.project}\t{len(rec.body)} bytes\t{letter.reason}")
        print(f"{len(held)} records set aside in {letters.directory}", file=sys.stderr)
        return 0
    spool = Spool(data_dir / "spool")
    spool.open()  # refuses while a server holds the spool
    try:
        n = letters.replay(spool)
    finally:
        spool.close()
    print(f"put {n} records back into the spool; the server stores them when it starts")
    return 0


def _report(argv: Sequence[str]) -> int:
    from watchkeeper.cli._report import report_main

    return report_main(argv)


def _export(argv: Sequence[str]) -> int:
    from watchkeeper.cli._export import export_main

    return export_main(list(argv))


def _schema_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("engine", choices=["clickhouse"], help="the span store's engine")
    p.add_argument(
        "--cluster",
        help="a named ClickHouse cluster: Replicated tables on every node, Distributed over them",
    )
    p.add_argument("--ttl-days", type=int, help="keep this many days (the tables' TTL)")


def _schema(args: argparse.Namespace) -> int:
    """Print the span and log stores' DDL, to review or to run by hand (clickhouse-client -n)."""
    from watchkeeper.store import clickhouse, clickhouse_logs

    try:
        statements = [
            *clickhouse.schema_statements(args.cluster, args.ttl_days),
            *clickhouse_logs.schema_statements(args.cluster, args.ttl_days),
        ]
    except ValueError as exc:
        raise WatchkeeperError(str(exc)) from None
    print("".join(f"{sql};\n\n" for sql in statements), end="")
    return 0


def _no_options(_p: argparse.ArgumentParser) -> None:
    return None


def _guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except WatchkeeperError as exc:
            print(f"watchkeeper: {exc}", file=sys.stderr)
            return 2

    return wrapper


COMMANDS: tuple[Command, ...] = (
    Command("serve", "run the server: OTLP ingest, API, UI", _serve_options, _guarded(_serve)),
    Command("keys", "create, list or revoke project API keys", _keys_options, _guarded(_keys)),
    Command("audit", "verify the audit log's hash chain, or export it", _audit_options,
            _guarded(_audit)),
    Command("secrets", "make a server key, seal a secret, re-seal after rotation",
            _secrets_options, _guarded(_secrets)),
    Command("dead-letter", "list or replay the records ingest set aside", _dead_letter_options,
            _guarded(_dead_letter)),
    Command("schema", "print the span and log stores' DDL (ClickHouse; --cluster)", _schema_options,
            _guarded(_schema)),
    Command("report", "print the daily or weekly digest", _no_options, passthrough=_report),
    Command("export", "export Prometheus rules, Alertmanager config, Grafana", _no_options,
            passthrough=_export),
)  # fmt: skip
