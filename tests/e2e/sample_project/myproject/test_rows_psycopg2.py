"""Fixed primary keys in the shared `items` table and exact counts, through psycopg2."""

from __future__ import annotations

import pytest
from dzsample import rows_case


@pytest.mark.parametrize("case", range(12))
def test_rows(case: int) -> None:
    rows_case("psycopg2", case)
