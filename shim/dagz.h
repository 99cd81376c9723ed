/*
 * dagz.h — the C ABI of libdagz.so (ABI version 1).
 *
 * libdagz.so is preloaded (LD_PRELOAD) into a test process. It interposes libpq's
 * PQconnectdb/PQconnectdbParams/PQconnectStart/PQconnectStartParams/PQsetdbLogin and the
 * MySQL/MariaDB client's mysql_real_connect/mysql_select_db/mysql_change_user (and their
 * *_start variants) and mysql_query/mysql_real_query/mysql_send_query/mysql_stmt_prepare/
 * mariadb_stmt_execute_direct (a USE is rewritten; a statement that could change the database in
 * a way dagz cannot rewrite is refused), and rewrites the database name to the per-worker one.
 * The functions below are for the Python package (via ctypes) and for C users.
 *
 * String results: a function that produces a string writes it NUL-terminated into `out`
 * (truncated to out_len - 1 bytes) and returns its full length in bytes; when that length is
 * >= out_len, call again with a buffer of length + 1. On error it writes a one-line message
 * starting with "dagz:" into `out` and returns -1.
 *
 * Every function is safe to call from any thread and never unwinds or aborts.
 */
#ifndef DAGZ_H
#define DAGZ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DAGZ_ABI_VERSION 1

/* Engine codes. */
#define DAGZ_ENGINE_POSTGRES 1
#define DAGZ_ENGINE_MYSQL 2

/* Return codes of the decision callback. */
#define DAGZ_CB_KEEP 0     /* connect to the original name */
#define DAGZ_CB_REROUTE 1  /* connect to the name written into `out` */
#define DAGZ_CB_DEFAULT 2  /* no opinion: apply the declarative policy (env + DAGZ_POLICY) */
#define DAGZ_CB_ERROR (-1) /* refuse the connect; `out` holds the message */

/* Kinds of statement of dagz_mysql_rewrite_statement. */
#define DAGZ_STMT_OTHER 0  /* cannot change the connection's database: send it unchanged */
#define DAGZ_STMT_USE 1    /* a single USE that dagz rewrites exactly */
#define DAGZ_STMT_REFUSE 2 /* may change the database in a way dagz cannot rewrite: refuse it */
#define DAGZ_STMT_CALL 3   /* calls stored procedures: read their bodies before sending it */

/* The ABI version of the loaded library (DAGZ_ABI_VERSION it was built with). */
int dagz_abi_version(void);
/* The library's version string, static storage. */
const char *dagz_version(void);

/* Thread-local bypass: while the depth is > 0, connects on this thread are not rerouted and the
 * decision callback is not called. Nestable. enter returns the new depth; exit returns the new
 * depth, or -1 when the thread was not in a bypass. */
int dagz_bypass_enter(void);
int dagz_bypass_exit(void);
int dagz_bypass_depth(void);

/* Decision callback: called once per rerouting decision (per connect, select_db, change_user,
 * USE) with the engine code and the effective database name, with no dagz lock held and behind
 * a per-thread re-entrancy guard (connects made inside the callback are not rerouted and do not
 * call it again). Write a NUL-terminated name or message into `out` (out_len bytes available)
 * and return one of DAGZ_CB_*. The function must stay valid for the life of the process.
 * Pass NULL to unregister. Returns 0. */
typedef int (*dagz_decision_cb)(int engine, const char *name, char *out, size_t out_len);
int dagz_set_decision_callback(dagz_decision_cb cb);

/* Decision callback with the connection's settings: as dagz_decision_cb, plus `params`, a block of
 * `params_len` bytes holding `key\0value\0` for each setting the connect gives (params may be NULL
 * when params_len is 0). libpq: the keywords after libpq's own parse of the conninfo, URI, keyword
 * arrays (the first dbname expanded when expand_dbname) or PQsetdbLogin arguments, last value
 * winning (host, hostaddr, port, user, password, sslmode, sslrootcert, sslcert, sslkey, service,
 * options, ...; never dbname: `name` is the effective database). MySQL client: host, user, passwd,
 * port, unix_socket of mysql_real_connect, remembered per handle for a later mysql_select_db or
 * USE, with user and passwd of mysql_change_user. The block may hold a password: keep it in
 * memory only. Registering it replaces a dagz_decision_cb and the other way round. Returns 0. */
typedef int (*dagz_decision_cb2)(int engine, const char *name, const char *params,
                                 size_t params_len, char *out, size_t out_len);
int dagz_set_decision_callback2(dagz_decision_cb2 cb);

/* The worker number and count as the shim sees them now (DAGZ_WORKER / PYTEST_XDIST_WORKER,
 * DAGZ_WORKER_COUNT / PYTEST_XDIST_WORKER_COUNT). 0, or -1 with the message in `out`. */
int dagz_worker(unsigned *num, unsigned *count, char *out, size_t out_len);

/* Validates the policy (DAGZ_POLICY file + env) now. 0, or -1 with the message in `out`. */
int dagz_policy_check(char *out, size_t out_len);

/* The declarative policy's decision for `name` on the current worker (no callback, no bypass):
 * writes the name to use (the original when kept); *rerouted (if not NULL) is set to 1 or 0. */
ssize_t dagz_policy_decide(int engine, const char *name, int *rerouted, char *out, size_t out_len);

/* The name template applied to `name` for `worker`, only checking the engine's length limit. */
ssize_t dagz_policy_render(int engine, const char *name, unsigned worker, char *out, size_t out_len);

/* The suffix the template adds for `worker` ("_jw03"). */
ssize_t dagz_policy_suffix(int engine, unsigned worker, char *out, size_t out_len);

/* The database named by a URL (postgresql://, postgres://, mysql://, SQLAlchemy forms such as
 * postgresql+psycopg2:// and mysql+pymysql://). Returns -2 when the URL names no database. */
ssize_t dagz_url_get_db(const char *url, char *out, size_t out_len);

/* `url` with its database replaced by `db`, every other byte kept. */
ssize_t dagz_url_set_db(const char *url, const char *db, char *out, size_t out_len);

/* The libpq hooks' whole decision (bypass, callback, policy) applied to a conninfo string or URI,
 * for drivers the shim cannot see: writes the conninfo to use (the original when unchanged). */
ssize_t dagz_pg_rewrite_conninfo(const char *conninfo, char *out, size_t out_len);

/* The MySQL hooks' statement rule, for drivers the shim cannot see (PyMySQL): classifies the
 * statement of `len` bytes at `sql` (len == (size_t)-1: NUL-terminated) and sets *kind:
 *  DAGZ_STMT_OTHER  - nothing written, returns 0;
 *  DAGZ_STMT_USE    - new_db NULL: writes the database the USE names; else writes the statement
 *                     with that name replaced by new_db (backtick-quoted), every other byte kept;
 *  DAGZ_STMT_REFUSE - new_db NULL: writes the database it would switch to ("" when unknown);
 *                     else (new_db = the name the caller's decision would use instead, "" when
 *                     unknown) writes the "dagz:" refusal message and returns -1;
 *  DAGZ_STMT_CALL   - otherwise harmless, but calls procedures whose bodies decide: new_db NULL:
 *                     writes them as "DB:NAME" pairs, each part hex-encoded (DB empty: the
 *                     current database), separated by ","; else nothing written, returns 0. */
ssize_t dagz_mysql_rewrite_statement(const char *sql, size_t len, const char *new_db, int *kind,
                                     char *out, size_t out_len);

/* `s` (a conninfo or URL) with any password replaced by "***". */
ssize_t dagz_redact(const char *s, char *out, size_t out_len);

/* Per-test work follows use: a new test began (generation `gen`, increasing). The shim remembers
 * each connection it rerouted (PGconn*, MYSQL*) with its database and the generation it was last
 * prepared in; with `check` non-zero, the first statement of this test on a connection of an
 * earlier generation (a pool kept it) first calls the use callback for its database. Returns 0. */
int dagz_begin_test(uint64_t gen, int check);

/* The use callback: called with the connection's engine (DAGZ_ENGINE_*) and database before a
 * statement, on the statement's thread, under the same re-entrancy guard as the decision
 * callback. Return 0 to let the statement run, or -1 with a NUL-terminated message in `out`
 * (out_len bytes available): the statement then fails with it (libpq: the server raises it in
 * place of the statement; MySQL client: the handle's error). NULL unregisters. Returns 0. */
typedef int (*dagz_use_cb)(int engine, const char *db, char *out, size_t out_len);
int dagz_set_use_callback(dagz_use_cb cb);

#ifdef __cplusplus
}
#endif
#endif /* DAGZ_H */
