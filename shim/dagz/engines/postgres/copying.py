"""Moving the rows of a PostgreSQL table with COPY (text format: exact for every type with text
I/O), from one connection to another or through a file, with psycopg (3) or psycopg2."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import IO, Any

from dagz.engines.base import DbConnection, dependency_order
from dagz.engines.postgres.connection import quote_ident
from dagz.engines.postgres.fingerprints import _Table

#: psycopg2 copies a table through memory up to this size, then through a temporary file.
_COPY_SPOOL_BYTES = 32 << 20


def _fill_order(tables: list[_Table], fks: Sequence[tuple[str, str]]) -> list[_Table] | None:
    """`tables` with every table after the tables it references (None: a reference cycle)."""
    by_name = {t.qn: t for t in tables}
    needs = {t.qn: {p for c, p in fks if c == t.qn and p in by_name} for t in tables}
    order = dependency_order([t.qn for t in tables], needs)
    return None if order is None else [by_name[qn] for qn in order]


def _copy_sql(table: _Table) -> tuple[str, str]:
    """(COPY … TO STDOUT, COPY … FROM STDIN) of `table`, generated columns left out."""
    cols = f" ({', '.join(quote_ident(c) for c in table.cols)})" if table.cols else ""
    if table.kind == "p":  # COPY TO does not read partitioned tables: a query does
        listed = ", ".join(quote_ident(c) for c in table.cols) or "*"
        out_sql = f"COPY (SELECT {listed} FROM {table.qn}) TO STDOUT"
    else:
        out_sql = f"COPY {table.qn}{cols} TO STDOUT"
    return out_sql, f"COPY {table.qn}{cols} FROM STDIN"


def _copy_file(conn: DbConnection, table: _Table, file: IO[bytes], *, out: bool) -> None:
    """COPY `table` out of `conn` into `file` (`out`), or from `file` into `conn`."""
    cur: Any = conn.cursor()
    sql = _copy_sql(table)[0 if out else 1]
    try:
        if hasattr(cur, "copy_expert"):  # psycopg2
            cur.copy_expert(sql, file)
        elif out:
            with cur.copy(sql) as reader:
                for block in reader:
                    file.write(block)
        else:
            with cur.copy(sql) as writer:
                while block := file.read(1 << 20):
                    writer.write(block)
    finally:
        cur.close()


def _copy_out(src: DbConnection, table: _Table, out: IO[bytes]) -> None:
    _copy_file(src, table, out, out=True)


def _copy_in(dst: DbConnection, table: _Table, data: IO[bytes]) -> None:
    _copy_file(dst, table, data, out=False)


def _copy_table(src: DbConnection, dst: DbConnection, table: _Table) -> None:
    """Streams the rows of `table` from `src` into `dst` (COPY … TO STDOUT → COPY … FROM
    STDIN)."""
    src_cur: Any = src.cursor()
    if hasattr(src_cur, "copy_expert"):  # psycopg2: through a spooled buffer
        src_cur.close()
        with tempfile.SpooledTemporaryFile(max_size=_COPY_SPOOL_BYTES) as buf:
            _copy_out(src, table, buf)
            buf.seek(0)
            _copy_in(dst, table, buf)
        return
    dst_cur: Any = dst.cursor()
    try:
        out_sql, in_sql = _copy_sql(table)
        with src_cur.copy(out_sql) as reader, dst_cur.copy(in_sql) as writer:
            for block in reader:
                writer.write(block)
    finally:
        src_cur.close()
        dst_cur.close()
