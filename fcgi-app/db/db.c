/* libpq connection management for one worker. */
#include "db/db.h"

#include "core/log.h"
#include "auth/scope.h"
#include "pool/scoreboard.h"
#include "core/xalloc.h"

#include <poll.h>
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
    int64_t answered_ms; /* when the connection last answered */
    /* The codes of the city regions, comma-separated (scope.h), read when
     * the connection opens: regions are reference data the migrations
     * write, and the daemon restarts to apply a migration. */
    char *cities;
    char sqlstate[6];
    char constraint[64];
    db_refusal_t refusal;
};

const db_refusal_t *db_refusal(const db_t *db)
{
    return &db->refusal;
}

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
    free(db->cities);
    db->cities = NULL;
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

const char *db_last_constraint(const db_t *db)
{
    return db->constraint;
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
    PGresult *r = PQexec(db->conn, "SELECT coalesce(string_agg(code, ',' ORDER BY code), '')"
                                   " FROM regions WHERE kind = 'city'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        log_error("database connected but the city regions could not be read: %s",
                  PQresultErrorMessage(r));
        PQclear(r);
        db_disconnect(db);
        db->last_failed_connect_ms = now;
        return -1;
    }
    db->cities = xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
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
    const char *constraint = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    snprintf(db->constraint, sizeof db->constraint, "%s", constraint ? constraint : "");
    char msg[256];
    snprintf(msg, sizeof msg, "%s",
             res ? PQresultErrorMessage(res) : (db->conn ? PQerrorMessage(db->conn) : ""));
    msg[strcspn(msg, "\n")] = '\0';
    if (state != NULL && strncmp(state, "IT", 2) == 0) {
        const char *rule = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        db->refusal.status = atoi(state + 2);
        snprintf(db->refusal.rule, sizeof db->refusal.rule, "%s", rule ? rule : "");
        snprintf(db->refusal.detail, sizeof db->refusal.detail, "%s", detail ? detail : "");
        return DB_REFUSED;
    }
    /* The server gives every error of its own a SQLSTATE: one without is
     * libpq's, about the connection (a server that went away may leave it
     * looking healthy until the next read). */
    int broken = db->conn == NULL || PQstatus(db->conn) == CONNECTION_BAD || state == NULL;
    /* 08: connection exception; 57: operator intervention (shutdown, cancel,
     * statement timeout); 53: insufficient resources. */
    int unavailable =
        broken || (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57", 2) == 0 ||
                             strncmp(state, "53", 2) == 0));
    if (unavailable)
        log_error("database unavailable in %s: %s%s", stmt->name, msg,
                  broken ? " (connection dropped)" : "");
    else if (strcmp(state, "42501") == 0 && strstr(msg, "row-level security") != NULL)
        /* Row security refusing what the caller may not write: the
         * caller's error, answered 403, not the server's. */
        log_info("statement %s refused: %s", stmt->name, msg);
    else if (strncmp(state, "23", 2) != 0 && strncmp(state, "22", 2) != 0)
        log_error("statement %s failed: SQLSTATE %s: %s", stmt->name, state, msg);
    if (broken)
        db_disconnect(db);
    if (unavailable)
        return DB_UNAVAILABLE;
    if (state != NULL && strncmp(state, "22", 2) == 0)
        return DB_BAD_INPUT;
    if (state != NULL && strcmp(state, "23503") == 0)
        return DB_NO_REFERENT;
    if (state != NULL && strncmp(state, "23", 2) == 0)
        return DB_CONFLICT;
    if (state != NULL && strcmp(state, "42501") == 0)
        return DB_FORBIDDEN;
    return DB_ERROR;
}

/* itpm_set_context() (sql/007_hot_paths.sql) as a statement of its own,
 * with the scope worked out here (scope.h): the server only keeps the
 * settings, where deriving the scope in SQL cost it as much again. The
 * settings are answered as one number, not echoed back as nine columns
 * the server would describe and convert on every request. */
#define CONTEXT_SQL(extra)                                                                         \
    "SELECT num_nulls(set_config('itpm.user_id', $1, true), set_config('itpm.unit', $2, true),"    \
    " set_config('itpm.region', $3, true), set_config('itpm.roles', $4, true),"                    \
    " set_config('itpm.classified', $5, true), set_config('itpm.scope_all_read', $6, true),"       \
    " set_config('itpm.scope_all_write', $7, true), set_config('itpm.scope_region', $8, true),"    \
    " set_config('itpm.scope_unit', $9, true)" extra ")"

static const db_stmt_t stmt_context = {"itpm_set_context", CONTEXT_SQL(""), 9, 1};

/* Every audited write waits for the audit chain's lock, which is held to the
 * end of its transaction's commit: with a synchronous commit that is the WAL
 * flush too, so writes in the whole database queued behind one another's
 * disk flushes (and behind a holder descheduled meanwhile). A write therefore
 * commits without waiting for the flush, which releases the lock as soon as
 * its commit record is in the WAL, and, before anyone is answered, a second
 * small transaction commits synchronously: an empty transactional logical
 * message gives it an xid and a WAL record, without which its commit would
 * not wait for a flush, and its flush covers all WAL before it, the write's
 * commit included. An answered write is as durable as
 * before; a crash just after a write's commit loses it together with all the
 * WAL after it, so the audit chain stays whole. */
static const db_stmt_t stmt_context_write = {
    "itpm_set_context_w", CONTEXT_SQL(", set_config('synchronous_commit', 'off', true)"), 9, 1};

static const db_stmt_t stmt_flush = {"itpm_flush",
                                     "SELECT pg_logical_emit_message(true, 'itpm', '')", 0, 1};

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

static int result_ok(ExecStatusType st)
{
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* Whether the next result is the pipeline's Sync. */
static int pipeline_synced(PGconn *conn)
{
    PGresult *sync = PQgetResult(conn);
    int synced = sync != NULL && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    return synced;
}

/* The context and n statements in one pipeline, one round trip. Everything
 * up to the pipeline's Sync is one implicit transaction: the context set
 * with set_config(..., true) holds for the statements, and an error rolls
 * all of it back, so no BEGIN and COMMIT need to travel (each would cost
 * the server a statement). On success out[0..n-1] hold the statements'
 * results (owned by the arena). */
/* A connection that answered less than this long ago is taken to be open:
 * a server restart takes longer, and under load no write pays for a look. */
#define DB_LOOK_AFTER_MS 100

/* Whether an idle connection has something to read: the server says
 * nothing unasked between queries but its farewell (a restart's FATAL and
 * the close), so this one is going away. */
static int closing(db_t *db)
{
    if (monotonic_ms() - db->answered_ms < DB_LOOK_AFTER_MS)
        return 0;
    struct pollfd p = {.fd = PQsocket(db->conn), .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

static int query_as_once(db_t *db, arena_t *a, const db_actor_t *actor,
                         const db_stmt_t *const *stmts, const char *const *const *values, int n,
                         PGresult **out, db_status_t *status)
{
    int writes = 0;
    for (int i = 0; i < n; i++)
        writes = writes || !stmts[i]->idempotent;
    /* A write cannot be retried once sent (it may have run): one sent on a
     * connection a restart closed would fail the request. A read is
     * retried instead, so only writes pay for the look. */
    if (writes && db->conn != NULL && closing(db))
        db_disconnect(db);
    if (db->conn == NULL && db_connect(db) < 0) {
        *status = DB_UNAVAILABLE;
        return -1;
    }
    const db_stmt_t *context = writes ? &stmt_context_write : &stmt_context;
    if (ensure_prepared(db, context, status) < 0 ||
        (writes && ensure_prepared(db, &stmt_flush, status) < 0))
        return -1;
    for (int i = 0; i < n; i++)
        if (ensure_prepared(db, stmts[i], status) < 0)
            return -1;
    scope_t scope;
    scope_of(actor->roles, actor->unit, actor->region, db->cities, &scope);
    const char *ctx[] = {actor->user_id,
                         actor->unit,
                         actor->region,
                         actor->roles,
                         actor->classified ? "on" : "off",
                         scope.all_read,
                         scope.all_write,
                         scope.region,
                         scope.unit};
    PGconn *c = db->conn;
    int sent = PQenterPipelineMode(c) == 1 &&
               PQsendQueryPrepared(c, context->name, 9, ctx, NULL, NULL, 0) == 1;
    for (int i = 0; sent && i < n; i++)
        sent = PQsendQueryPrepared(c, stmts[i]->name, stmts[i]->nparams, values[i], NULL, NULL,
                                   0) == 1;
    sent = sent && PQpipelineSync(c) == 1;
    if (writes)
        sent = sent && PQsendQueryPrepared(c, stmt_flush.name, 0, NULL, NULL, NULL, 0) == 1 &&
               PQpipelineSync(c) == 1;
    if (!sent) {
        *status = db_failure(db, stmts[0], NULL);
        db_disconnect(db);
        return -1;
    }
    int total = n + 1;
    PGresult *results[DB_MAX_BATCH + 1] = {NULL};
    ExecStatusType sts[DB_MAX_BATCH + 1];
    for (int i = 0; i < total; i++)
        sts[i] = drain_one(c, &results[i]);
    int synced = pipeline_synced(c);
    int committed = synced;
    for (int i = 0; i < total; i++)
        committed = committed && result_ok(sts[i]);
    /* The flush answers after the write's Sync, whatever the write did. */
    PGresult *flushed = NULL;
    int flush_ok = 1;
    if (writes && synced)
        flush_ok = drain_one(c, &flushed) == PGRES_TUPLES_OK && pipeline_synced(c);
    int exited = PQexitPipelineMode(c) == 1;
    db->answered_ms = monotonic_ms();
    int rc = 0;
    if (writes && committed && !flush_ok) {
        /* The write is committed but not known to be on disk: not answered
         * as done, nor as unavailable, which would invite a retry (a second
         * declaration, say) of what did happen. */
        db_failure(db, &stmt_flush, flushed);
        log_error("%s committed but the WAL flush after it failed", stmts[0]->name);
        if (!exited)
            db_disconnect(db);
        *status = DB_ERROR;
        rc = -1;
    } else if (!synced || !exited) {
        *status = db_failure(db, stmts[0], NULL);
        db_disconnect(db);
        rc = -1;
    }
    PQclear(flushed);
    for (int i = 0; rc == 0 && i < total; i++) {
        if (result_ok(sts[i]) || sts[i] == PGRES_PIPELINE_ABORTED)
            continue;
        *status = db_failure(db, i == 0 ? context : stmts[i - 1], results[i]);
        rc = -1;
    }
    for (int i = 0; i < total; i++) {
        if (rc == 0 && i >= 1) {
            out[i - 1] = results[i];
            arena_on_reset(a, result_clear, results[i]);
        } else {
            PQclear(results[i]);
        }
    }
    if (rc == 0)
        *status = DB_OK;
    return rc;
}

int db_batch_as(db_t *db, arena_t *a, const db_actor_t *actor, const db_stmt_t *const *stmts,
                const char *const *const *values, int n, PGresult **out, db_status_t *status)
{
    if (n < 1 || n > DB_MAX_BATCH) {
        *status = DB_ERROR;
        return -1;
    }
    db->sqlstate[0] = '\0';
    int idempotent = 1;
    for (int i = 0; i < n; i++)
        idempotent = idempotent && stmts[i]->idempotent;
    int was_connected = db->conn != NULL;
    int rc = query_as_once(db, a, actor, stmts, values, n, out, status);
    /* A connection found dead (the server restarted) is retried once when
     * every statement may safely run twice. */
    if (rc < 0 && was_connected && db->conn == NULL && idempotent)
        rc = query_as_once(db, a, actor, stmts, values, n, out, status);
    return rc;
}

PGresult *db_query_as(db_t *db, arena_t *a, const db_actor_t *actor, const db_stmt_t *stmt,
                      const char *const *values, db_status_t *status)
{
    PGresult *out = NULL;
    const db_stmt_t *stmts[] = {stmt};
    const char *const *vals[] = {values};
    return db_batch_as(db, a, actor, stmts, vals, 1, &out, status) < 0 ? NULL : out;
}

PGresult *db_query(db_t *db, arena_t *a, const db_stmt_t *stmt, const char *const *values,
                   db_status_t *status)
{
    db->sqlstate[0] = '\0';
    /* As in query_as_once(): a write cannot be retried once sent. */
    if (!stmt->idempotent && db->conn != NULL && closing(db))
        db_disconnect(db);
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
        db->answered_ms = monotonic_ms();
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (result_ok(st)) {
            arena_on_reset(a, result_clear, res);
            *status = DB_OK;
            return res;
        }
        *status = db_failure(db, stmt, res);
        PQclear(res);
        /* db_failure() dropped a broken connection. */
        if (!(db->conn == NULL && stmt->idempotent && attempt == 0))
            return NULL;
    }
    return NULL;
}

int db_flush(db_t *db, arena_t *a, db_status_t *status)
{
    if (db_query(db, a, &stmt_flush, NULL, status) != NULL)
        return 0;
    if (*status != DB_UNAVAILABLE)
        *status = DB_ERROR; /* whatever refused it, not the caller's request */
    return -1;
}

PGconn *db_conn(db_t *db, db_status_t *status)
{
    /* The caller's statements (a batch) are not retried either. */
    if (db->conn != NULL && closing(db))
        db_disconnect(db);
    if (db->conn == NULL && db_connect(db) < 0) {
        *status = DB_UNAVAILABLE;
        return NULL;
    }
    return db->conn;
}

PGconn *db_current(const db_t *db)
{
    return db->conn;
}

PGresult *db_exec(db_t *db, arena_t *a, const char *what, const char *sql, int n,
                  const char *const *values, db_status_t *status)
{
    const db_stmt_t named = {what, sql, n, 0};
    if (db->conn == NULL) {
        *status = DB_UNAVAILABLE;
        return NULL;
    }
    PGresult *r = PQexecParams(db->conn, sql, n, NULL, values, NULL, NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_COPY_IN) {
        *status = db_failure(db, &named, r);
        PQclear(r);
        return NULL;
    }
    arena_on_reset(a, result_clear, r);
    *status = DB_OK;
    return r;
}

db_status_t db_fail(db_t *db, const char *what, PGresult *res)
{
    const db_stmt_t named = {what, "", 0, 0};
    return db_failure(db, &named, res);
}

void db_release(db_t *db)
{
    if (db->conn != NULL && PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
        log_warn("database connection left busy; closing it");
        db_disconnect(db);
    }
}
