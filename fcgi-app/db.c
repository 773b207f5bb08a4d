/* libpq connection management for one worker. */
#include "db.h"

#include "log.h"
#include "scoreboard.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB_MAX_PREPARED 128
/* After a failed connect, requests answer 503 at once for this long instead
 * of each paying for another attempt. */
#define DB_RETRY_MS 250

struct db {
    const conf_t *conf;
    PGconn *conn;
    const db_stmt_t *prepared[DB_MAX_PREPARED];
    int nprepared;
    int64_t last_failed_connect_ms;
    char sqlstate[6];
};

db_t *db_create(const conf_t *conf)
{
    db_t *db = xcalloc(1, sizeof *db);
    db->conf = conf;
    return db;
}

static void db_disconnect(db_t *db)
{
    if (db->conn != NULL)
        PQfinish(db->conn);
    db->conn = NULL;
    db->nprepared = 0;
}

void db_destroy(db_t *db)
{
    if (db == NULL)
        return;
    db_disconnect(db);
    free(db);
}

const char *db_last_sqlstate(const db_t *db)
{
    return db->sqlstate;
}

static int db_connect(db_t *db)
{
    int64_t now = monotonic_ms();
    if (db->last_failed_connect_ms != 0 && now - db->last_failed_connect_ms < DB_RETRY_MS)
        return -1;
    char timeout[16], options[64];
    snprintf(timeout, sizeof timeout, "%d", db->conf->db_connect_timeout);
    snprintf(options, sizeof options, "-c statement_timeout=%d", db->conf->db_statement_timeout);
    const char *const keys[] = {"dbname", "connect_timeout", "options", "application_name", NULL};
    const char *const values[] = {db->conf->db_conninfo, timeout, options, "itpmd", NULL};
    db->conn = PQconnectdbParams(keys, values, 1);
    if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", db->conn ? PQerrorMessage(db->conn) : "out of memory");
        msg[strcspn(msg, "\n")] = '\0';
        log_error("database connect failed: %s", msg);
        db_disconnect(db);
        db->last_failed_connect_ms = now;
        return -1;
    }
    db->last_failed_connect_ms = 0;
    log_info("database connected (server %d)", PQserverVersion(db->conn));
    return 0;
}

static int is_prepared(const db_t *db, const db_stmt_t *stmt)
{
    for (int i = 0; i < db->nprepared; i++)
        if (db->prepared[i] == stmt)
            return 1;
    return 0;
}

static void result_clear(void *res)
{
    PQclear(res);
}

/* Classifies a failed result, logging it once. */
static db_status_t db_failure(db_t *db, const db_stmt_t *stmt, PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(db->sqlstate, sizeof db->sqlstate, "%s", state ? state : "");
    char msg[256];
    snprintf(msg, sizeof msg, "%s",
             res ? PQresultErrorMessage(res) : (db->conn ? PQerrorMessage(db->conn) : ""));
    msg[strcspn(msg, "\n")] = '\0';
    int broken = db->conn == NULL || PQstatus(db->conn) == CONNECTION_BAD;
    /* 08: connection exception; 57: operator intervention (shutdown, cancel,
     * statement timeout); 53: insufficient resources. */
    int unavailable = broken || (state && (strncmp(state, "08", 2) == 0 ||
                                           strncmp(state, "57", 2) == 0 ||
                                           strncmp(state, "53", 2) == 0));
    if (unavailable)
        log_error("database unavailable in %s: %s%s", stmt->name, msg,
                  broken ? " (connection dropped)" : "");
    else if (state == NULL || (strncmp(state, "23", 2) != 0 && strncmp(state, "22", 2) != 0))
        log_error("statement %s failed: SQLSTATE %s: %s", stmt->name, state ? state : "-", msg);
    if (broken)
        db_disconnect(db);
    if (unavailable)
        return DB_UNAVAILABLE;
    return state != NULL && strncmp(state, "22", 2) == 0 ? DB_BAD_INPUT : DB_ERROR;
}

static const db_stmt_t stmt_context = {
    "itpm_set_context", "SELECT itpm_set_context($1, $2, $3, $4, $5::boolean)", 5, 1};

/* Prepares stmt on the current connection if it is not yet; -1 on failure
 * with *status set (the connection may have been dropped). */
static int ensure_prepared(db_t *db, const db_stmt_t *stmt, db_status_t *status)
{
    if (is_prepared(db, stmt))
        return 0;
    PGresult *p = PQprepare(db->conn, stmt->name, stmt->sql, stmt->nparams, NULL);
    if (p == NULL || PQresultStatus(p) != PGRES_COMMAND_OK) {
        *status = db_failure(db, stmt, p);
        PQclear(p);
        return -1;
    }
    PQclear(p);
    if (db->nprepared < DB_MAX_PREPARED)
        db->prepared[db->nprepared++] = stmt;
    return 0;
}

/* Reads every result of one pipelined query; keeps the last data-bearing
 * one in *keep (or the error). Returns its status. */
static ExecStatusType drain_one(PGconn *conn, PGresult **keep)
{
    ExecStatusType st = PGRES_FATAL_ERROR;
    PGresult *r;
    int got = 0;
    while ((r = PQgetResult(conn)) != NULL) {
        got = 1;
        st = PQresultStatus(r);
        if (*keep != NULL)
            PQclear(*keep);
        *keep = r;
    }
    return got ? st : PGRES_FATAL_ERROR;
}

static PGresult *query_as_once(db_t *db, arena_t *a, const db_actor_t *actor,
                               const db_stmt_t *stmt, const char *const *values,
                               db_status_t *status)
{
    if (db->conn == NULL && db_connect(db) < 0) {
        *status = DB_UNAVAILABLE;
        return NULL;
    }
    if (ensure_prepared(db, &stmt_context, status) < 0 || ensure_prepared(db, stmt, status) < 0)
        return NULL;
    const char *ctx[] = {actor->user_id, actor->unit, actor->region, actor->roles,
                         actor->classified ? "true" : "false"};
    PGconn *c = db->conn;
    if (PQenterPipelineMode(c) != 1 ||
        PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) != 1 ||
        PQsendQueryPrepared(c, stmt_context.name, 5, ctx, NULL, NULL, 0) != 1 ||
        PQsendQueryPrepared(c, stmt->name, stmt->nparams, values, NULL, NULL, 0) != 1 ||
        PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) != 1 ||
        PQpipelineSync(c) != 1) {
        *status = db_failure(db, stmt, NULL);
        if (db->conn != NULL)
            db_disconnect(db);
        return NULL;
    }
    PGresult *results[4] = {NULL, NULL, NULL, NULL};
    ExecStatusType sts[4];
    for (int i = 0; i < 4; i++)
        sts[i] = drain_one(c, &results[i]);
    PGresult *sync = PQgetResult(c);
    int synced = sync != NULL && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    if (!synced || PQexitPipelineMode(c) != 1) {
        *status = db_failure(db, stmt, NULL);
        for (int i = 0; i < 4; i++)
            PQclear(results[i]);
        if (db->conn != NULL)
            db_disconnect(db);
        return NULL;
    }
    for (int i = 0; i < 4; i++) {
        int ok = sts[i] == PGRES_COMMAND_OK || sts[i] == PGRES_TUPLES_OK;
        if (!ok && sts[i] != PGRES_PIPELINE_ABORTED) {
            *status = db_failure(db, i == 1 ? &stmt_context : stmt, results[i]);
            for (int j = 0; j < 4; j++)
                PQclear(results[j]);
            /* An explicit transaction survives the pipeline's error: end it. */
            if (db->conn != NULL && PQtransactionStatus(db->conn) != PQTRANS_IDLE)
                PQclear(PQexec(db->conn, "ROLLBACK"));
            return NULL;
        }
    }
    PGresult *out = results[2];
    for (int i = 0; i < 4; i++)
        if (i != 2)
            PQclear(results[i]);
    arena_on_reset(a, result_clear, out);
    *status = DB_OK;
    return out;
}

PGresult *db_query_as(db_t *db, arena_t *a, const db_actor_t *actor, const db_stmt_t *stmt,
                      const char *const *values, db_status_t *status)
{
    db->sqlstate[0] = '\0';
    int was_connected = db->conn != NULL;
    PGresult *res = query_as_once(db, a, actor, stmt, values, status);
    /* A connection found dead (the server restarted) is retried once when
     * the statement may safely run twice. */
    if (res == NULL && was_connected && db->conn == NULL && stmt->idempotent)
        res = query_as_once(db, a, actor, stmt, values, status);
    return res;
}

PGresult *db_query(db_t *db, arena_t *a, const db_stmt_t *stmt, const char *const *values,
                   db_status_t *status)
{
    db->sqlstate[0] = '\0';
    for (int attempt = 0; attempt < 2; attempt++) {
        if (db->conn == NULL && db_connect(db) < 0) {
            *status = DB_UNAVAILABLE;
            return NULL;
        }
        if (ensure_prepared(db, stmt, status) < 0) {
            /* A statement never sent cannot have run: a retry is always safe. */
            if (db->conn == NULL && attempt == 0)
                continue;
            return NULL;
        }
        PGresult *res = PQexecPrepared(db->conn, stmt->name, stmt->nparams, values, NULL, NULL, 0);
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            arena_on_reset(a, result_clear, res);
            *status = DB_OK;
            return res;
        }
        int was_broken = db->conn == NULL || PQstatus(db->conn) == CONNECTION_BAD;
        *status = db_failure(db, stmt, res);
        PQclear(res);
        if (!(was_broken && stmt->idempotent && attempt == 0))
            return NULL;
    }
    return NULL;
}
