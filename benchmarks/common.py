"""What the benchmarks that run a server share: a free port and a fresh database."""

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reset_database(url: str) -> None:
    """Drop and create the PostgreSQL database of `url`."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def settle_database() -> None:
    """Vacuum, analyse and checkpoint the database just loaded, so that a measurement sees it
    as a service's database is (settled) and not the autovacuum and checkpoint a bulk load
    sets off, which would otherwise run during the measurement."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")
