"""A throw-away PostgreSQL 15 server in a temporary directory, for tests.

Runs as the OS user ``postgres`` (initdb refuses root), listens on 127.0.0.1 only on a free port, and
accepts one role with a password (scram-sha-256). Missing binaries are an error, not a skip: CI runs on
the same image, which has them.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path(os.environ.get("IMPACT_LEDGER_PG_BIN", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(args: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a server binary as the postgres OS user when we are root (initdb and postgres refuse root)."""
    cmd = [str(a) for a in args]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", OS_USER, "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


@dataclass
class PgServer:
    root: Path
    port: int
    user: str
    password: str
    database: str

    def url(self, password: str | None = None, with_password: bool = True) -> str:
        """A SQLAlchemy URL (psycopg2) for the test role."""
        secret = f":{password or self.password}" if with_password else ""
        return f"postgresql+psycopg2://{self.user}{secret}@127.0.0.1:{self.port}/{self.database}"

    def stop(self) -> None:
        _as_postgres([PG_BIN / "pg_ctl", "stop", "-D", self.root / "data", "-m", "immediate", "-w"])


def start_server(tmp: Path, user: str = "app", database: str = "shop") -> PgServer:
    for binary in ("initdb", "pg_ctl", "postgres", "psql"):
        if not (PG_BIN / binary).is_file():
            raise PostgresUnavailable(
                f"PostgreSQL 15 binary {PG_BIN / binary} not found: install the Debian packages postgresql and "
                "postgresql-15 (apt-get install postgresql-15), or set IMPACT_LEDGER_PG_BIN to their bin folder"
            )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            raise PostgresUnavailable(
                f"running as root and there is no OS user '{OS_USER}' to run PostgreSQL as"
            ) from None
    root = Path(tmp) / "pg"
    root.mkdir(parents=True)
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    pwfile = root / "superuser.pw"
    pwfile.write_text(secrets.token_hex(16))
    if os.geteuid() == 0:  # the server's files belong to the OS user it runs as
        for path in [Path(tmp), root, sock, pwfile]:
            shutil.chown(path, OS_USER, OS_USER)
    out = _as_postgres(
        [
            PG_BIN / "initdb",
            "-D",
            data,
            "-U",
            "postgres",
            "--pwfile",
            pwfile,
            "--auth",
            "scram-sha-256",
            "-E",
            "UTF8",
            "--locale",
            "C",
        ]
    )
    if out.returncode:
        raise PostgresUnavailable(f"initdb failed: {out.stderr.strip() or out.stdout.strip()}")
    port = _free_port()
    # local TCP only, a unix socket in our own folder (not /var/run/postgresql), no fsync: a throw-away server
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off -c full_page_writes=off -c log_min_messages=warning"
    out = _as_postgres(
        [PG_BIN / "pg_ctl", "start", "-D", data, "-w", "-t", "60", "-o", opts, "-l", root / "server.log"]
    )
    if out.returncode:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        raise PostgresUnavailable(f"pg_ctl start failed: {out.stderr.strip()} {log[-2000:]}")
    password = secrets.token_hex(12)
    server = PgServer(root, port, user, password, database)
    env = dict(os.environ, PGPASSWORD=pwfile.read_text())
    sql = f"CREATE ROLE {user} LOGIN PASSWORD '{password}'; CREATE DATABASE {database} OWNER {user};"
    for statement in sql.split("; "):
        out = _as_postgres(
            [
                PG_BIN / "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                statement.rstrip(";"),
            ],
            env=env,
        )
        if out.returncode:
            server.stop()
            raise PostgresUnavailable(f"creating the test role and database failed: {out.stderr.strip()}")
    deadline = time.time() + 30
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    return server
