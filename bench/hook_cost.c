/* Workload for bench/hook_cost: N connects through libpq and libmariadb, and M statements through
 * mysql_query (none of them a USE, on an unconnected handle), so that callgrind can count the instructions the preloaded
 * hooks add, run side by side with and without LD_PRELOAD.
 * Usage: hook_cost pg|pg_pass|pg_query|pg_query_pending|mysql_connect|mysql_query COUNT DB
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
        MYSQL *m = mysql_init(NULL);
        for (long i = 0; i < n; i++) mysql_query(m, "SELECT id, name FROM t WHERE id = 1");
        mysql_close(m);
    }
    return 0;
}
