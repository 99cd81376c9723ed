"""Issue 14: `dagz db list` / `dagz db drop` cover the Django test databases dagz makes (the
template ``test_<NAME>_dzt`` and the worker copies ``test_<NAME>_gwN``), and still drop only what
carries dagz's stamp: Django's own ``…_gwN`` (no stamp), a copy whose stamp names another template
and a ``…_dzt`` with a plain (non-Django) stamp stay. Every check is made from the server side;
every database is named after this run's prefix (as with a ``TEST["NAME"]``: the template
``<TEST NAME>_dzt``, the copies ``<TEST NAME>_gwN``) and dropped at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dagz.engines import warm
from test_destroy_only_own import Server, _dagz, _engine

from support import unique_name


@pytest.fixture(params=["pg", "mysql"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    srv = Server(str(request.param))
    try:
        yield srv
    finally:
        srv.drop_all()


def test_db_list_and_drop_cover_djangos_template_and_copies(server: Server) -> None:
    name = unique_name("dj")  # Django's TEST["NAME"] (NAME: `base`)
    base, template = f"{name}_b", f"{name}_dzt"
    done, half = f"{name}_gw0", f"{name}_gw1"
    stamp = warm.stamp_text(base, "a" * 32, django="b" * 32, migrations="7")
    server.create(template, comment=stamp)
    server.create(done, comment=warm.stamp_text(template, "c" * 32))
    server.create(half, comment=warm.building_text(template))
    djangos = server.create(f"{name}_gw2")  # pytest-django's own, without dagz
    other = server.create(f"{name}_gw3", comment=warm.stamp_text(f"{name}_o_dzt", "d" * 32))
    plain = server.create(f"{name}_p_dzt", comment=warm.stamp_text(base, "e" * 32))
    engine = _engine(server)

    listing = _dagz("db", "list", "--engine", engine)
    assert listing.returncode == 0, listing.stderr
    lines = {ln.split()[1]: ln for ln in listing.stdout.splitlines()[1:] if name in ln}
    assert set(lines) == {template, done, half}, listing.stdout
    assert lines[template].split()[2] == base
    assert lines[done].split()[2] == template
    assert "(incomplete)" in lines[half]

    dropped = _dagz("db", "drop", "--base", template, "--engine", engine)
    assert dropped.returncode == 0, dropped.stderr
    assert f"dropped {engine} {done} (base {template})" in dropped.stdout
    assert not server.exists(done)
    assert server.exists(half)
    assert server.exists(template)
    dropped = _dagz("db", "drop", "--base", template, "--incomplete", "--engine", engine)
    assert f"dropped {engine} {half} (base {template}, incomplete)" in dropped.stdout
    dropped = _dagz("db", "drop", "--base", base, "--engine", engine)
    assert dropped.stdout.splitlines() == [f"dropped {engine} {template} (base {base})"]
    assert not server.exists(half)
    assert not server.exists(template)
    for kept in (djangos, other, plain):
        assert server.exists(kept), kept
        assert server.count(kept) == 3, kept
