/* Sends one statement through one hooked libmariadb entry point on a connection without a current
 * database, then prints what the server says (issue 12). Usage:
 *   mysql_use MODE STMT [LEN]
 *     MODE: query | real_query | send_query | stmt_prepare | multi (mysql_query on a connection
 *           with CLIENT_MULTI_STATEMENTS, every result drained)
 *     STMT: the statement; "\0" in it stands for a NUL byte (real_query / send_query / stmt_prepare)
 *     LEN:  the length passed (default: the decoded statement's length; "-1": (unsigned long)-1)
 * Prints key=value lines: rc (the entry point's return value), error (mysql_error / mysql_stmt_error
 * when rc != 0), db (SELECT DATABASE() afterwards on the same connection, NULL for none).
 * Connection: 127.0.0.1:3306, root, empty password, the database $DZ_CONNECT_DB (default none).
 * Exit 2 if the connection itself fails.
 */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t decode(const char *in, char *out) {
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        if (p[0] == '\\' && p[1] == '0') {
            out[n++] = '\0';
            p++;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
    return n;
}

static void print_db(MYSQL *m) {
    if (mysql_query(m, "SELECT DATABASE()")) {
        printf("db_error=%s\n", mysql_error(m));
        return;
    }
    MYSQL_RES *r = mysql_store_result(m);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    printf("db=%s\n", row && row[0] ? row[0] : "NULL");
    if (r) mysql_free_result(r);
}

static void drain(MYSQL *m) {
    do {
        MYSQL_RES *r = mysql_store_result(m);
        if (r) mysql_free_result(r);
    } while (mysql_next_result(m) == 0);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s MODE STMT [LEN]\n", argv[0]); return 64; }
    const char *mode = argv[1];
    char *q = malloc(strlen(argv[2]) + 1);
    size_t n = decode(argv[2], q);
    unsigned long len = n;
    if (argc > 3) len = strcmp(argv[3], "-1") ? strtoul(argv[3], NULL, 10) : (unsigned long)-1;
    unsigned long flags = strcmp(mode, "multi") ? 0 : CLIENT_MULTI_STATEMENTS;
    MYSQL *m = mysql_init(NULL);
    const char *db = getenv("DZ_CONNECT_DB"); /* the database to connect to (default: none) */
    if (!mysql_real_connect(m, "127.0.0.1", "root", "", db, 3306, NULL, flags)) {
        fprintf(stderr, "connect failed: %s\n", mysql_error(m));
        return 2;
    }
    int rc;
    const char *err = NULL;
    if (!strcmp(mode, "query") || !strcmp(mode, "multi")) {
        rc = mysql_query(m, q);
        if (!rc) drain(m);
    } else if (!strcmp(mode, "real_query")) {
        rc = mysql_real_query(m, q, len);
        if (!rc) drain(m);
    } else if (!strcmp(mode, "send_query")) {
        rc = mysql_send_query(m, q, len);
        if (!rc) rc = mysql_read_query_result(m);
        if (!rc) drain(m);
    } else if (!strcmp(mode, "stmt_prepare")) {
        MYSQL_STMT *s = mysql_stmt_init(m);
        rc = mysql_stmt_prepare(s, q, len);
        if (!rc) rc = mysql_stmt_execute(s);
        printf("rc=%d\n", rc);
        if (rc) printf("error=%s\n", mysql_stmt_error(s));
        mysql_stmt_close(s);
        print_db(m);
        mysql_close(m);
        return 0;
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 64;
    }
    printf("rc=%d\n", rc);
    if (rc) err = mysql_error(m);
    if (err) printf("error=%s\n", err);
    print_db(m);
    mysql_close(m);
    free(q);
    return 0;
}
