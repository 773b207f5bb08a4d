/* Migration runner (itpmd --migrate), connected as the schema owner. Files
 * are trusted SQL shipped with the daemon, so they run as whole scripts;
 * everything taken from a request elsewhere is a parameter. */
#include "db/migrate.h"

#include "core/log.h"
#include "core/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MIGRATIONS 1000

static int is_migration(const char *name)
{
    size_t n = strlen(name);
    return n > 8 && name[0] >= '0' && name[0] <= '9' && name[1] >= '0' && name[1] <= '9' &&
           name[2] >= '0' && name[2] <= '9' && name[3] == '_' &&
           strcmp(name + n - 4, ".sql") == 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 65536, len = 0;
    char *buf = xmalloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len - 1 == 0) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

static int exec_ok(PGconn *c, PGresult *r, const char *what)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(r);
        return 0;
    }
    log_error("migration: %s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    PQclear(r);
    return -1;
}

static int applied(PGconn *c, const char *version)
{
    const char *v[] = {version};
    PGresult *r = PQexecParams(c, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, NULL,
                               v, NULL, NULL, 0);
    int yes = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) > 0 : -1;
    if (yes < 0)
        log_error("migration: %s", PQresultErrorMessage(r));
    PQclear(r);
    return yes;
}

static int apply_one(PGconn *c, const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *sql = read_file(path);
    if (sql == NULL) {
        log_error("migration: cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char version[64];
    snprintf(version, sizeof version, "%.*s", (int)(strlen(name) - 4), name);
    int rc = -1;
    if (exec_ok(c, PQexec(c, "BEGIN"), "BEGIN") < 0)
        goto out;
    if (exec_ok(c, PQexec(c, sql), name) < 0)
        goto rollback;
    const char *v[] = {version};
    if (exec_ok(c, PQexecParams(c, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, NULL,
                                v, NULL, NULL, 0),
                "record") < 0)
        goto rollback;
    if (exec_ok(c, PQexec(c, "COMMIT"), "COMMIT") < 0)
        goto out;
    log_info("migration %s applied", version);
    rc = 0;
    goto out;
rollback:
    PQclear(PQexec(c, "ROLLBACK"));
out:
    free(sql);
    return rc;
}

int migrate_run(const conf_t *conf)
{
    int rc = -1;
    char *names[MAX_MIGRATIONS];
    int n = 0;
    DIR *d = opendir(conf->sql_dir);
    if (d == NULL) {
        log_error("migration: cannot open %s: %s", conf->sql_dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < MAX_MIGRATIONS)
        if (is_migration(e->d_name))
            names[n++] = xstrdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_names);

    PGconn *c = PQconnectdb(conf->db_migrate_conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        log_error("migration: connect: %s", PQerrorMessage(c));
        goto out;
    }
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    /* One migrator at a time, across hosts. */
    if (exec_ok(c, PQexec(c, "SELECT pg_advisory_lock(7305001)"), "lock") < 0)
        goto out;
    if (exec_ok(c,
                PQexec(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                          " version text PRIMARY KEY,"
                          " applied_at timestamptz NOT NULL DEFAULT now())"),
                "schema_migrations") < 0)
        goto out;
    int count = 0;
    for (int i = 0; i < n; i++) {
        char version[64];
        snprintf(version, sizeof version, "%.*s", (int)(strlen(names[i]) - 4), names[i]);
        int done = applied(c, version);
        if (done < 0)
            goto out;
        if (done)
            continue;
        if (apply_one(c, conf->sql_dir, names[i]) < 0)
            goto out;
        count++;
    }
    log_info("migrations: %d applied, %d already in place", count, n - count);
    rc = 0;
out:
    PQfinish(c);
    for (int i = 0; i < n; i++)
        free(names[i]);
    return rc;
}
