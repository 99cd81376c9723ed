/*
 * pg_entrypoints — connect through exactly one libpq entry point, then print
 * `SELECT current_database()` on stdout.
 *
 * Used by tests/e2e to prove, from the server side, that the dagz shim rewrites the
 * database name on every libpq connect path. Linked with -lpq (the system libpq).
 *
 * Usage:
 *   pg_entrypoints connectdb            CONNINFO
 *   pg_entrypoints connect_start        CONNINFO
 *   pg_entrypoints connectdb_params     [-x|--expand-dbname] KEY=VALUE...
 *   pg_entrypoints connect_start_params [-x|--expand-dbname] KEY=VALUE...
 *   pg_entrypoints setdblogin           [KEY=VALUE...]
 *
 * CONNINFO is a `key=value` string or a URI. For the *_params modes each KEY=VALUE becomes one
 * keyword/value pair (split at the first '=', so a VALUE may itself be a conninfo string);
 * -x passes expand_dbname=1. For setdblogin the keys are host, port, options, tty, dbname, user,
 * password; an absent key is passed as NULL (so no dbname= means dbName == NULL).
 *
 * Exit status: 0 printed the database, 2 connection failed (PQerrorMessage on stderr),
 * 3 query failed, 64 usage error.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_CONNECT 2
#define EXIT_QUERY 3
#define EXIT_USAGE 64
#define MAX_PAIRS 64
#define POLL_TIMEOUT_MS 15000

static void usage(void) {
    fputs("usage: pg_entrypoints connectdb|connect_start CONNINFO\n"
          "       pg_entrypoints connectdb_params|connect_start_params [-x] KEY=VALUE...\n"
          "       pg_entrypoints setdblogin [host=|port=|options=|tty=|dbname=|user=|password=]...\n",
          stderr);
    exit(EXIT_USAGE);
}

/* Split argv[first..argc) into keyword/value arrays (NULL-terminated). Returns the pair count. */
static int parse_pairs(int argc, char **argv, int first, const char **keys, const char **vals) {
    int n = 0;
    for (int i = first; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL || eq == argv[i] || n >= MAX_PAIRS) {
            fprintf(stderr, "pg_entrypoints: bad KEY=VALUE argument: %s\n", argv[i]);
            exit(EXIT_USAGE);
        }
        *eq = '\0';
        keys[n] = argv[i];
        vals[n] = eq + 1;
        n++;
    }
    keys[n] = NULL;
    vals[n] = NULL;
    return n;
}

static const char *lookup(const char **keys, const char **vals, const char *key) {
    for (int i = 0; keys[i] != NULL; i++) {
        if (strcmp(keys[i], key) == 0) {
            return vals[i];
        }
    }
    return NULL;
}

static void fail_connect(PGconn *conn, const char *what) {
    if (conn == NULL) {
        fprintf(stderr, "pg_entrypoints: %s returned NULL\n", what);
    } else {
        fprintf(stderr, "%s", PQerrorMessage(conn));
        PQfinish(conn);
    }
    exit(EXIT_CONNECT);
}

/* Drive a PQconnectStart* connection to completion with PQconnectPoll + poll(2). */
static void complete_async(PGconn *conn, const char *what) {
    if (conn == NULL || PQstatus(conn) == CONNECTION_BAD) {
        fail_connect(conn, what);
    }
    /* libpq docs: after PQconnectStart, act as if PQconnectPoll returned PGRES_POLLING_WRITING. */
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    for (;;) {
        if (st == PGRES_POLLING_OK) {
            return;
        }
        if (st == PGRES_POLLING_FAILED) {
            fail_connect(conn, what);
        }
        int fd = PQsocket(conn); /* the socket may change between calls */
        if (fd < 0) {
            fail_connect(conn, what);
        }
        struct pollfd pfd = {.fd = fd, .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        int rc = poll(&pfd, 1, POLL_TIMEOUT_MS);
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        if (rc < 0) {
            perror("pg_entrypoints: poll");
            PQfinish(conn);
            exit(EXIT_CONNECT);
        }
        if (rc == 0) {
            fprintf(stderr, "pg_entrypoints: timeout while connecting\n");
            PQfinish(conn);
            exit(EXIT_CONNECT);
        }
        st = PQconnectPoll(conn);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage();
    }
    const char *mode = argv[1];
    const char *keys[MAX_PAIRS + 1];
    const char *vals[MAX_PAIRS + 1];
    PGconn *conn = NULL;

    if (strcmp(mode, "connectdb") == 0 || strcmp(mode, "connect_start") == 0) {
        if (argc != 3) {
            usage();
        }
        if (strcmp(mode, "connectdb") == 0) {
            conn = PQconnectdb(argv[2]);
            if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
                fail_connect(conn, "PQconnectdb");
            }
        } else {
            conn = PQconnectStart(argv[2]);
            complete_async(conn, "PQconnectStart");
        }
    } else if (strcmp(mode, "connectdb_params") == 0 || strcmp(mode, "connect_start_params") == 0) {
        int first = 2;
        int expand = 0;
        if (argc > 2 && (strcmp(argv[2], "-x") == 0 || strcmp(argv[2], "--expand-dbname") == 0)) {
            expand = 1;
            first = 3;
        }
        parse_pairs(argc, argv, first, keys, vals);
        if (strcmp(mode, "connectdb_params") == 0) {
            conn = PQconnectdbParams(keys, vals, expand);
            if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
                fail_connect(conn, "PQconnectdbParams");
            }
        } else {
            conn = PQconnectStartParams(keys, vals, expand);
            complete_async(conn, "PQconnectStartParams");
        }
    } else if (strcmp(mode, "setdblogin") == 0) {
        parse_pairs(argc, argv, 2, keys, vals);
        static const char *const allowed[] = {"host", "port", "options", "tty",
                                              "dbname", "user", "password", NULL};
        for (int i = 0; keys[i] != NULL; i++) {
            int ok = 0;
            for (int j = 0; allowed[j] != NULL; j++) {
                ok |= strcmp(keys[i], allowed[j]) == 0;
            }
            if (!ok) {
                fprintf(stderr, "pg_entrypoints: setdblogin does not take key %s\n", keys[i]);
                return EXIT_USAGE;
            }
        }
        conn = PQsetdbLogin(lookup(keys, vals, "host"), lookup(keys, vals, "port"),
                            lookup(keys, vals, "options"), lookup(keys, vals, "tty"),
                            lookup(keys, vals, "dbname"), lookup(keys, vals, "user"),
                            lookup(keys, vals, "password"));
        if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
            fail_connect(conn, "PQsetdbLogin");
        }
    } else {
        usage();
    }

    PGresult *res = PQexec(conn, "SELECT current_database()");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        fprintf(stderr, "pg_entrypoints: query failed: %s", PQerrorMessage(conn));
        PQclear(res);
        PQfinish(conn);
        return EXIT_QUERY;
    }
    printf("%s\n", PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(conn);
    return 0;
}
