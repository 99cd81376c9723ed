/* Workload for bench/hook_cost: N connects through libpq and libmariadb, and M statements through
 * mysql_query (none of them a USE, on an unconnected handle), so that callgrind can count the instructions the preloaded
 * hooks add, run side by side with and without LD_PRELOAD.
 * Usage: hook_cost pg|pg_pass|pg_query|pg_query_pending|mysql_connect|mysql_query[:NAME]|
 *        mysql_real_query[:NAME] COUNT DB
 * (mysql_query:NAME sends the statement NAME of the table below, plain mysql_query the first;
 * mysql_real_query sends it with its length, as Python's mysqlclient does)
 * (pg: a rerouted connect to DB; pg_pass: a pass-through, to the system database postgres;
 * pg_query: PQexec on a connection that failed (libpq answers at once, no I/O): the statement
 * hook with the per-test check idle; pg_query_pending: the same while the check is pending
 * (another rerouted connection is of an earlier test), so each statement takes the slow path's
 * look-up of its connection;
 * mysql_connect: a connect to DB, which must exist, as DB_jw03 must for the rerouted runs) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Statements an application sends (issue 12: none can change the database; the names users,
 * updates, products, payments and user_id start with u/p like USE and PREPARE). */
static const char *const QUERIES[][2] = {
    {"plain", "SELECT id, name FROM t WHERE id = 1"},
    {"users", "SELECT id, email FROM users WHERE id = 42"},
    {"django", "SELECT `auth_user`.`id`, `auth_user`.`password`, `auth_user`.`last_login`, "
               "`auth_user`.`is_superuser`, `auth_user`.`username`, `auth_user`.`email` "
               "FROM `auth_user` WHERE `auth_user`.`username` = 'user_17' LIMIT 21"},
    {"insert", "INSERT INTO payments (user_id, product_id, amount, status) "
               "VALUES (17, 4, 19.99, 'pending')"},
    {"update", "UPDATE products SET price = 12.5, updated_at = NOW() WHERE id = 3"},
    {"long_literal", "INSERT INTO updates (user_id, product_id, body) VALUES (5, 9, 'Please use the "
                     "new endpoint: users who update products should use it, reuse it and prepare "
                     "their payments with it. Unused keys expire.')"},
    {"semicolon_literal", "UPDATE updates SET body = 'use it; then update users; prepare payments' "
                          "WHERE user_id = 5"},
    {"trailing_semicolon", "SELECT * FROM users WHERE user_id = 7;"},
};

int main(int argc, char **argv) {
    if (argc != 4) return 64;
    long n = atol(argv[2]);
    const char *db = argv[3];
    if (!strcmp(argv[1], "pg") || !strcmp(argv[1], "pg_pass")) {
        /* Port 1 refuses at once: libpq's work is then the same in every call (a real server's
         * handshake varies by thousands of instructions between runs), while the hook does all
         * it does for a real connect: resolution, parsing, decision, rewrite. */
        char ci[256];
        snprintf(ci, sizeof ci, "host=127.0.0.1 port=1 user=postgres dbname=%s",
                 !strcmp(argv[1], "pg") ? db : "postgres");
        for (long i = 0; i < n; i++) {
            PGconn *c = PQconnectdb(ci);
            if (PQstatus(c) == CONNECTION_OK) { fprintf(stderr, "port 1 answered?\n"); return 2; }
            PQfinish(c);
        }
    } else if (!strcmp(argv[1], "pg_query") || !strcmp(argv[1], "pg_query_pending")) {
        PGconn *c = PQconnectdb("host=127.0.0.1 port=1 user=postgres dbname=postgres");
        int (*begin)(uint64_t, int) = (int (*)(uint64_t, int))dlsym(RTLD_DEFAULT, "dagz_begin_test");
        if (!strcmp(argv[1], "pg_query_pending") && begin) {
            char ci[256]; /* a rerouted connection (failed: port 1), remembered by the shim */
            snprintf(ci, sizeof ci, "host=127.0.0.1 port=1 user=postgres dbname=%s", db);
            PQconnectdb(ci);
            begin(2, 1); /* a new test: that connection is now of an earlier one */
        }
        for (long i = 0; i < n; i++) PQclear(PQexec(c, "SELECT id, name FROM t WHERE id = 1"));
        PQfinish(c);
    } else if (!strcmp(argv[1], "mysql_connect")) {
        for (long i = 0; i < n; i++) {
            MYSQL *m = mysql_init(NULL);
            if (!mysql_real_connect(m, "127.0.0.1", "root", "", db, 3306, NULL, 0)) {
                fprintf(stderr, "%s\n", mysql_error(m)); return 2;
            }
            mysql_close(m);
        }
    } else {
        /* An unconnected handle: the real mysql_query fails at once with "server has gone away",
         * without network I/O, so the count is deterministic and the hook's share is visible. */
        const char *q = NULL, *name = strchr(argv[1], ':');
        for (size_t k = 0; k < sizeof QUERIES / sizeof *QUERIES; k++)
            if (!name || !strcmp(name + 1, QUERIES[k][0])) { q = QUERIES[k][1]; break; }
        if (!q) { fprintf(stderr, "unknown statement %s\n", argv[1]); return 64; }
        MYSQL *m = mysql_init(NULL);
        if (!strncmp(argv[1], "mysql_real_query", 16)) { /* the length known: mysqlclient's path */
            unsigned long len = strlen(q);
            for (long i = 0; i < n; i++) mysql_real_query(m, q, len);
        } else {
            for (long i = 0; i < n; i++) mysql_query(m, q);
        }
        mysql_close(m);
    }
    return 0;
}
