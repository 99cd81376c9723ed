/* Connects to MariaDB through one hooked entry point of libmariadb and prints where the session
 * landed (SELECT DATABASE()), one line per step. Usage:
 *   mysql_entrypoints MODE DB        MODE: connect | select_db | change_user | query | real_query |
 *                                          send_query | connect_start | select_db_start |
 *                                          change_user_start | threads
 * Connection: 127.0.0.1:3306, root, empty password. Exit 2 with mysql_error() on stderr on failure.
 */
#include <mysql.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dagz_bypass_enter(void) __attribute__((weak));
int dagz_bypass_exit(void) __attribute__((weak));

static void die(MYSQL *m, const char *what) {
    fprintf(stderr, "%s failed: %s\n", what, mysql_error(m));
    exit(2);
}

static void print_db(MYSQL *m, const char *label) {
    if (mysql_query(m, "SELECT DATABASE()")) die(m, "SELECT DATABASE()");
    MYSQL_RES *r = mysql_store_result(m);
    if (!r) die(m, "store_result");
    MYSQL_ROW row = mysql_fetch_row(r);
    printf("%s %s\n", label, row && row[0] ? row[0] : "NULL");
    mysql_free_result(r);
}

/* Drives a non-blocking operation to completion. */
static int wait_for(MYSQL *m, int status) {
    struct pollfd p = {.fd = mysql_get_socket(m), .events = 0};
    if (status & MYSQL_WAIT_READ) p.events |= POLLIN;
    if (status & MYSQL_WAIT_WRITE) p.events |= POLLOUT;
    if (status & MYSQL_WAIT_EXCEPT) p.events |= POLLPRI;
    int timeout = (status & MYSQL_WAIT_TIMEOUT) ? (int)mysql_get_timeout_value_ms(m) : -1;
    int rc = poll(&p, 1, timeout);
    if (rc == 0) return MYSQL_WAIT_TIMEOUT;
    int out = 0;
    if (p.revents & POLLIN) out |= MYSQL_WAIT_READ;
    if (p.revents & POLLOUT) out |= MYSQL_WAIT_WRITE;
    if (p.revents & POLLPRI) out |= MYSQL_WAIT_EXCEPT;
    return out;
}

static MYSQL *connect_db(const char *db) {
    MYSQL *m = mysql_init(NULL);
    if (!mysql_real_connect(m, "127.0.0.1", "root", "", db, 3306, NULL, 0)) die(m, "mysql_real_connect");
    return m;
}

/* The database the threads connect to: argv[2] (the test passes its own name, never a fixed one). */
static const char *thread_db;

static void *thread_main(void *arg) {
    long i = (long)arg;
    int bypass = i % 2;
    if (bypass) {
        if (!dagz_bypass_enter) { fprintf(stderr, "libdagz not preloaded\n"); exit(3); }
        dagz_bypass_enter();
    }
    MYSQL *m = mysql_init(NULL);
    if (!mysql_real_connect(m, "127.0.0.1", "root", "", thread_db, 3306, NULL, 0)) die(m, "thread connect");
    char label[32];
    snprintf(label, sizeof label, "thread%ld-%s", i, bypass ? "bypass" : "plain");
    print_db(m, label);
    mysql_close(m);
    if (bypass) dagz_bypass_exit();
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s MODE DB\n", argv[0]); return 64; }
    const char *mode = argv[1], *db = argv[2];
    MYSQL *m;
    int status;
    if (!strcmp(mode, "connect")) {
        m = connect_db(db);
        print_db(m, mode);
    } else if (!strcmp(mode, "select_db")) {
        m = connect_db(NULL);
        if (mysql_select_db(m, db)) die(m, "mysql_select_db");
        print_db(m, mode);
    } else if (!strcmp(mode, "change_user")) {
        m = connect_db(NULL);
        if (mysql_change_user(m, "root", "", db)) die(m, "mysql_change_user");
        print_db(m, mode);
    } else if (!strcmp(mode, "query") || !strcmp(mode, "real_query") || !strcmp(mode, "send_query")) {
        char q[256];
        snprintf(q, sizeof q, "USE %s", db);
        m = connect_db(NULL);
        int rc;
        if (!strcmp(mode, "query")) rc = mysql_query(m, q);
        else if (!strcmp(mode, "real_query")) rc = mysql_real_query(m, q, strlen(q));
        else rc = mysql_send_query(m, q, strlen(q)) || mysql_read_query_result(m);
        if (rc) die(m, mode);
        print_db(m, mode);
    } else if (!strcmp(mode, "connect_start")) {
        MYSQL *ret = NULL;
        m = mysql_init(NULL);
        mysql_options(m, MYSQL_OPT_NONBLOCK, 0);
        status = mysql_real_connect_start(&ret, m, "127.0.0.1", "root", "", db, 3306, NULL, 0);
        while (status) status = mysql_real_connect_cont(&ret, m, wait_for(m, status));
        if (!ret) die(m, "mysql_real_connect_start");
        print_db(m, mode);
    } else if (!strcmp(mode, "select_db_start")) {
        int ret = 0;
        m = mysql_init(NULL);
        mysql_options(m, MYSQL_OPT_NONBLOCK, 0);
        if (!mysql_real_connect(m, "127.0.0.1", "root", "", NULL, 3306, NULL, 0)) die(m, "connect");
        status = mysql_select_db_start(&ret, m, db);
        while (status) status = mysql_select_db_cont(&ret, m, wait_for(m, status));
        if (ret) die(m, "mysql_select_db_start");
        print_db(m, mode);
    } else if (!strcmp(mode, "change_user_start")) {
        my_bool ret = 0;
        m = mysql_init(NULL);
        mysql_options(m, MYSQL_OPT_NONBLOCK, 0);
        if (!mysql_real_connect(m, "127.0.0.1", "root", "", NULL, 3306, NULL, 0)) die(m, "connect");
        status = mysql_change_user_start(&ret, m, "root", "", db);
        while (status) status = mysql_change_user_cont(&ret, m, wait_for(m, status));
        if (ret) die(m, "mysql_change_user_start");
        print_db(m, mode);
    } else if (!strcmp(mode, "threads")) {
        pthread_t t[8];
        thread_db = db;
        for (long i = 0; i < 8; i++) pthread_create(&t[i], NULL, thread_main, (void *)i);
        for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
        return 0;
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 64;
    }
    mysql_close(m);
    return 0;
}
