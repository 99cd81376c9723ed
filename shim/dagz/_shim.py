"""The only module that talks to libdagz.so (ctypes). Everything else calls these wrappers.

Two situations:

* the shim is preloaded (``LD_PRELOAD``): its symbols are in the global scope; we use that very
  copy, so the bypass and the decision callback act on the hooks that really run;
* it is not: we load the packaged (or built) library ``RTLD_LOCAL`` — its hooks then intercept
  nothing — only to use the rewrite rules, so they exist once, in Rust.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from dagz import envvars

ABI_VERSION = 1
ENGINE_POSTGRES = 1
ENGINE_MYSQL = 2
CB_KEEP = 0
CB_REROUTE = 1
CB_DEFAULT = 2
CB_ERROR = -1
STMT_OTHER = 0
STMT_USE = 1
STMT_REFUSE = 2
STMT_CALL = 3

_PKG_DIR = Path(__file__).resolve().parent


class ShimError(RuntimeError):
    """A `dagz:` error reported by the shim."""


def shim_path() -> Path:
    """Where libdagz.so is: ``DAGZ_SHIM``, the copy inside the package, or a checkout's build."""
    env = os.environ.get(envvars.SHIM)
    if env:
        return Path(env)
    packaged = _PKG_DIR / "libdagz.so"
    if packaged.exists():
        return packaged
    return _PKG_DIR.parent.parent / "target" / "release" / "libdagz.so"


def preloaded_path() -> str | None:
    """The path of a libdagz mapped into this process by the loader (LD_PRELOAD), if any."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                path = line.rstrip("\n").split(None, 5)[-1] if line.count(" ") >= 5 else ""
                if path.endswith("libdagz.so") or os.path.basename(path).startswith("libdagz"):
                    return path
    except OSError:
        return None
    return None


def _is_preloaded() -> bool:
    try:
        ctypes.CDLL(None).dagz_abi_version  # noqa: B018 - lookup in the global scope
    except AttributeError:
        return False
    return True


PRELOADED = _is_preloaded()


def _open() -> ctypes.CDLL:
    if PRELOADED:
        return ctypes.CDLL(None)
    path = shim_path()
    if not path.exists():
        raise ShimError(
            f"dagz: libdagz.so not found at {path}: build it (`make build`) or reinstall dagz"
        )
    return ctypes.CDLL(str(path), mode=os.RTLD_LOCAL)


_SSIZE = ctypes.c_ssize_t
_BUF = ctypes.c_char_p
_SIGNATURES: list[tuple[str, list[Any], Any]] = [
    ("dagz_abi_version", [], ctypes.c_int),
    ("dagz_version", [], ctypes.c_char_p),
    ("dagz_bypass_enter", [], ctypes.c_int),
    ("dagz_bypass_exit", [], ctypes.c_int),
    ("dagz_bypass_depth", [], ctypes.c_int),
    (
        "dagz_worker",
        [ctypes.POINTER(ctypes.c_uint)] * 2 + [ctypes.c_void_p, ctypes.c_size_t],
        ctypes.c_int,
    ),
    ("dagz_policy_check", [ctypes.c_void_p, ctypes.c_size_t], ctypes.c_int),
    (
        "dagz_policy_decide",
        [ctypes.c_int, _BUF, ctypes.POINTER(ctypes.c_int), ctypes.c_void_p, ctypes.c_size_t],
        _SSIZE,
    ),
    (
        "dagz_policy_render",
        [ctypes.c_int, _BUF, ctypes.c_uint, ctypes.c_void_p, ctypes.c_size_t],
        _SSIZE,
    ),
    ("dagz_policy_suffix", [ctypes.c_int, ctypes.c_uint, ctypes.c_void_p, ctypes.c_size_t], _SSIZE),
    ("dagz_url_get_db", [_BUF, ctypes.c_void_p, ctypes.c_size_t], _SSIZE),
    ("dagz_url_set_db", [_BUF, _BUF, ctypes.c_void_p, ctypes.c_size_t], _SSIZE),
    ("dagz_pg_rewrite_conninfo", [_BUF, ctypes.c_void_p, ctypes.c_size_t], _SSIZE),
    ("dagz_redact", [_BUF, ctypes.c_void_p, ctypes.c_size_t], _SSIZE),
    (
        "dagz_mysql_rewrite_statement",
        [
            ctypes.c_char_p,
            ctypes.c_size_t,
            _BUF,
            ctypes.POINTER(ctypes.c_int),
            ctypes.c_void_p,
            ctypes.c_size_t,
        ],
        _SSIZE,
    ),
]

_CB_TYPE = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t
)
_CB2_TYPE = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_void_p,
    ctypes.c_size_t,
)


@cache
def lib() -> ctypes.CDLL:
    """libdagz.so, opened and checked on first use — importing dagz never needs it, so a
    missing or mismatched library is an error where it is used, naming what to do."""
    handle = _open()
    for name, args, res in _SIGNATURES:
        fn = getattr(handle, name)
        fn.argtypes = args
        fn.restype = res
    handle.dagz_set_decision_callback.argtypes = [_CB_TYPE]
    handle.dagz_set_decision_callback.restype = ctypes.c_int
    if hasattr(handle, "dagz_set_use_callback"):  # a library older than it has none
        handle.dagz_set_use_callback.argtypes = [_CB_TYPE]
        handle.dagz_set_use_callback.restype = ctypes.c_int
        handle.dagz_begin_test.argtypes = [ctypes.c_uint64, ctypes.c_int]
        handle.dagz_begin_test.restype = ctypes.c_int
    if hasattr(handle, "dagz_set_decision_callback2"):  # a library older than it has none
        handle.dagz_set_decision_callback2.argtypes = [_CB2_TYPE]
        handle.dagz_set_decision_callback2.restype = ctypes.c_int
    if handle.dagz_abi_version() != ABI_VERSION:
        raise ShimError(
            f"dagz: the loaded libdagz.so has ABI version {handle.dagz_abi_version()}, "
            f"this dagz package needs {ABI_VERSION}; rebuild/reinstall so both match"
        )
    return handle


def version() -> str:
    """The shim's version string."""
    return (lib().dagz_version() or b"?").decode()


def _call_str(fn: Callable[..., int], *args: object) -> tuple[int, str]:
    """Calls a string-producing export, growing the buffer when needed. (rc, text)."""
    size = 256
    while True:
        buf = ctypes.create_string_buffer(size)
        rc = fn(*args, buf, size)
        if rc >= size:
            size = rc + 1
            continue
        return rc, buf.value.decode("utf-8", "surrogateescape")


def _checked(fn: Callable[..., int], *args: object) -> str:
    rc, text = _call_str(fn, *args)
    if rc == -1:
        raise ShimError(text)
    return text


def _b(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def bypass_enter() -> int:
    return int(lib().dagz_bypass_enter())


def bypass_exit() -> int:
    return int(lib().dagz_bypass_exit())


def bypass_depth() -> int:
    return int(lib().dagz_bypass_depth())


def worker() -> tuple[int, int]:
    """(worker number, worker count) as the shim reads them from the environment now."""
    num, count = ctypes.c_uint(), ctypes.c_uint()
    buf = ctypes.create_string_buffer(256)
    if lib().dagz_worker(ctypes.byref(num), ctypes.byref(count), buf, 256) != 0:
        raise ShimError(buf.value.decode("utf-8", "replace"))
    return num.value, count.value


def policy_check() -> None:
    buf = ctypes.create_string_buffer(4096)
    if lib().dagz_policy_check(buf, 4096) != 0:
        raise ShimError(buf.value.decode("utf-8", "replace"))


def policy_decide(engine: int, name: str) -> tuple[bool, str]:
    """The declarative policy's answer: (rerouted?, name to use)."""
    flag = ctypes.c_int(0)
    text = _checked(lib().dagz_policy_decide, engine, _b(name), ctypes.byref(flag))
    return bool(flag.value), text


def policy_render(engine: int, name: str, worker_num: int) -> str:
    return _checked(lib().dagz_policy_render, engine, _b(name), worker_num)


def policy_suffix(engine: int, worker_num: int) -> str:
    return _policy_suffix(engine, worker_num, os.environ.get(envvars.POLICY))


@cache
def _policy_suffix(engine: int, worker_num: int, policy: str | None) -> str:
    return _checked(lib().dagz_policy_suffix, engine, worker_num)


def url_get_db(url: str) -> str | None:
    rc, text = _call_str(lib().dagz_url_get_db, _b(url))
    if rc == -2:
        return None
    if rc == -1:
        raise ShimError(text)
    return text


def url_set_db(url: str, db: str) -> str:
    return _checked(lib().dagz_url_set_db, _b(url), _b(db))


def pg_rewrite_conninfo(conninfo: str) -> str:
    return _checked(lib().dagz_pg_rewrite_conninfo, _b(conninfo))


def mysql_statement(sql: bytes) -> tuple[int, str]:
    """The MySQL hooks' rule for one statement: (STMT_OTHER | STMT_USE | STMT_REFUSE, the
    database a USE names or a refused statement would switch to, "" when unknown)."""
    kind = ctypes.c_int(STMT_OTHER)
    fn = lib().dagz_mysql_rewrite_statement
    rc, text = _call_str(fn, sql, len(sql), None, ctypes.byref(kind))
    if rc == -1:
        raise ShimError(text)
    return kind.value, text


def mysql_rewrite_statement(sql: bytes, new_db: str) -> bytes:
    """A STMT_USE statement with its database replaced by `new_db`, every other byte kept; for a
    STMT_REFUSE statement raises ShimError with the refusal (`new_db`: the name the decision would
    use instead, "" when unknown)."""
    kind = ctypes.c_int(STMT_OTHER)
    fn = lib().dagz_mysql_rewrite_statement
    size = max(1024, len(sql) + len(new_db) * 2 + 16)  # a refusal's message fits too
    while True:
        buf = ctypes.create_string_buffer(size)
        rc = fn(sql, len(sql), _b(new_db), ctypes.byref(kind), buf, size)
        if rc >= size:
            size = rc + 1
            continue
        if rc == -1:
            raise ShimError(buf.value.decode("utf-8", "replace"))
        return buf.raw[:rc]


def redact(s: str) -> str:
    return _checked(lib().dagz_redact, _b(s))


DecisionCallback = Callable[[int, str], "tuple[int, str]"]
# The ctypes callback object must stay referenced for the life of the process: the shim keeps
# only its C function pointer, which dies with the Python object.
_registered: list[object] = []


def _write_text(out: int, size: int, text: str) -> None:
    """`text` into the shim's buffer `out` of `size` bytes, cut to fit, NUL-terminated."""
    data = text.encode("utf-8", "surrogateescape")[: max(size - 1, 0)]
    ctypes.memmove(out, data + b"\0", len(data) + 1)


def set_decision_callback(fn: DecisionCallback | None) -> None:
    """Registers `fn(engine, name) -> (code, text)` as the shim's decision callback (preloaded
    shim only). `fn` must not raise: exceptions in a ctypes callback are swallowed, so they are
    caught here and reported as CB_ERROR."""
    if not PRELOADED:
        raise ShimError("dagz: the decision callback needs the shim preloaded (LD_PRELOAD)")
    if fn is None:
        lib().dagz_set_decision_callback(_CB_TYPE())  # a NULL function pointer
        return

    def trampoline(engine: int, name: bytes, out: int, out_len: int) -> int:
        try:
            code, text = fn(engine, name.decode("utf-8", "surrogateescape"))
        except BaseException as exc:
            code, text = CB_ERROR, f"dagz: decision callback raised {type(exc).__name__}: {exc}"
        _write_text(out, out_len, text)
        return code

    cb = _CB_TYPE(trampoline)
    _registered.append(cb)
    lib().dagz_set_decision_callback(cb)


#: `fn(engine, name, settings)`: settings are the connection's (host, port, user, password, …).
DecisionCallback2 = Callable[[int, str, dict[str, str]], "tuple[int, str]"]


def parse_settings(block: bytes) -> dict[str, str]:
    """A `key\0value\0…` block of the shim as a dict (the last value of a key wins)."""
    parts = block.split(b"\0")
    out: dict[str, str] = {}
    for i in range(0, len(parts) - 1, 2):
        out[parts[i].decode("utf-8", "surrogateescape")] = parts[i + 1].decode(
            "utf-8", "surrogateescape"
        )
    return out


def has_settings_callback() -> bool:
    """Whether the loaded library gives a decision callback the connection's settings."""
    return hasattr(lib(), "dagz_set_decision_callback2")


def set_decision_callback2(fn: DecisionCallback2) -> None:
    """Registers `fn(engine, name, settings) -> (code, text)` as the decision callback (replacing
    one registered by `set_decision_callback`); `settings` may hold a password, so `fn` keeps it
    in memory only. A library without the export: `fn` gets empty settings."""
    if not PRELOADED:
        raise ShimError("dagz: the decision callback needs the shim preloaded (LD_PRELOAD)")
    if not has_settings_callback():
        set_decision_callback(lambda engine, name: fn(engine, name, {}))
        return

    def trampoline(engine: int, name: bytes, params: int, params_len: int, out: int, n: int) -> int:
        try:
            block = ctypes.string_at(params, params_len) if params and params_len else b""
            code, text = fn(engine, name.decode("utf-8", "surrogateescape"), parse_settings(block))
        except BaseException as exc:
            code, text = CB_ERROR, f"dagz: decision callback raised {type(exc).__name__}: {exc}"
        _write_text(out, n, text)
        return code

    cb = _CB2_TYPE(trampoline)
    _registered.append(cb)
    lib().dagz_set_decision_callback2(cb)


#: `fn(engine, db)`: "" when `db` may be used now, else the message the statement fails with.
UseCallback = Callable[[int, str], str]


def has_use_check() -> bool:
    """Whether the loaded library checks statements of pooled connections (`dagz_begin_test`)."""
    return PRELOADED and hasattr(lib(), "dagz_set_use_callback")


def set_use_callback(fn: UseCallback) -> None:
    """Registers `fn` as the shim's use callback (see `dagz_set_use_callback` in dagz.h)."""

    def trampoline(engine: int, db: bytes, out: int, out_len: int) -> int:
        try:
            text = fn(engine, db.decode("utf-8", "surrogateescape"))
        except BaseException as exc:
            text = f"dagz: use callback raised {type(exc).__name__}: {exc}"
        if not text:
            return 0
        _write_text(out, out_len, text)
        return -1

    cb = _CB_TYPE(trampoline)
    _registered.append(cb)
    lib().dagz_set_use_callback(cb)


def begin_test(gen: int, check: bool) -> None:
    """A new test began (see `dagz_begin_test` in dagz.h)."""
    lib().dagz_begin_test(gen, 1 if check else 0)
