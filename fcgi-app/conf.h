/* The daemon's settings: one table of every key with its type, default,
 * bounds and help; loaded from one INI file by inih. Business rules are not
 * here: they are data in PostgreSQL. */
#ifndef ITPM_CONF_H
#define ITPM_CONF_H

#include <stddef.h>

typedef struct {
    /* [server] */
    char *listen;
    int listen_backlog;
    char *socket_group;
    int socket_mode;
    int workers;
    int max_requests;
    int max_requests_jitter;
    int request_timeout;
    int shutdown_timeout;
    int respawn_backoff_max;
    char *pid_file;
    char *log_file;
    int log_level;
    long long max_body;
    char *public_origin;
    /* [database] */
    char *db_conninfo;
    char *db_migrate_conninfo;
    char *sql_dir;
    int db_connect_timeout;
    int db_statement_timeout;
} conf_t;

/* Loads path into conf (defaults first). On failure returns -1 and writes
 * "file:line: reason" into err. conf is left freed on failure. */
int conf_load(const char *path, conf_t *conf, char *err, size_t errlen);
/* Same, from a string (used by the tests); name is used in messages. */
int conf_load_string(const char *text, const char *name, conf_t *conf, char *err, size_t errlen);
void conf_free(conf_t *conf);
/* Prints every setting with its default and help (itpmd --help-config). */
void conf_print_reference(void);

#endif
