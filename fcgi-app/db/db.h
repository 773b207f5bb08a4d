/* The worker's PostgreSQL connection: opened lazily, statements prepared on
 * first use, results owned by the request arena, and a broken connection
 * answered with DB_UNAVAILABLE (503) and re-opened on a later request. */
#ifndef ITPM_DB_H
#define ITPM_DB_H

#include "core/arena.h"
#include "core/conf.h"

#include <libpq-fe.h>

typedef enum {
    DB_OK = 0,
    DB_UNAVAILABLE = -1, /* connection down, server shutting down, timed out */
    DB_ERROR = -2,       /* a statement failed for another reason */
    DB_BAD_INPUT = -3,   /* a parameter PostgreSQL could not take (SQLSTATE class 22) */
    DB_REFUSED = -4,     /* a rule refused: SQLSTATE IT<status>, see db_refusal() */
    DB_CONFLICT = -5,    /* a uniqueness or other integrity constraint (class 23) */
    DB_FORBIDDEN = -6,   /* row-level security or a privilege refused (42501) */
    DB_NO_REFERENT = -7, /* a value names a row that does not exist (23503) */
} db_status_t;

/* A statement the worker prepares once per connection. Define them as
 * static const next to the code that uses them. */
typedef struct {
    const char *name;
    const char *sql;
    int nparams;
    /* Safe to resend once after a broken connection. 0 also marks a write:
     * its transaction commits without waiting for the WAL flush, and a
     * second transaction flushes it before the answer (db.c). */
    int idempotent;
} db_stmt_t;

typedef struct db db_t;

db_t *db_create(const conf_t *conf);
void db_destroy(db_t *db);
/* Runs a prepared statement; the result is cleared when the arena resets.
 * On failure returns NULL and sets *status; the cause is logged. */
PGresult *db_query(db_t *db, arena_t *a, const db_stmt_t *stmt, const char *const *values,
                   db_status_t *status);
/* Flushes the WAL as far as it is written now, so that what a read just saw
 * of writes not yet answered (committed before their flush, see db.c) is on
 * disk before it is shown. 0, or -1 with *status set. */
int db_flush(db_t *db, arena_t *a, db_status_t *status);
/* The caller whose scope row-level security enforces (the itpm.* settings
 * that the policies read). */
typedef struct {
    const char *user_id;
    const char *unit;
    const char *region;
    const char *roles; /* "reviewer,director" */
    int classified;
} db_actor_t;

/* Runs stmt in its own transaction with the actor's scope set first:
 * BEGIN, itpm_set_context(...), stmt, COMMIT, sent as one pipeline so the
 * whole exchange costs a single round trip. Same contract as db_query. */
PGresult *db_query_as(db_t *db, arena_t *a, const db_actor_t *actor, const db_stmt_t *stmt,
                      const char *const *values, db_status_t *status);
#define DB_MAX_BATCH 64
/* The same with up to DB_MAX_BATCH statements in the one transaction; out[i]
 * is the result of stmts[i]. 0 or -1. */
int db_batch_as(db_t *db, arena_t *a, const db_actor_t *actor, const db_stmt_t *const *stmts,
                const char *const *const *values, int n, PGresult **out, db_status_t *status);
/* The last refusal: HTTP status, rule (the error's message) and detail. */
typedef struct {
    int status;
    char rule[64];
    char detail[512];
} db_refusal_t;
const db_refusal_t *db_refusal(const db_t *db);
/* SQLSTATE of the last failed statement ("" when none). */
const char *db_last_sqlstate(const db_t *db);
/* The constraint the last failed statement broke ("" when none). */
const char *db_last_constraint(const db_t *db);

/* Long exchanges outside the prepared-statement path (a bulk COPY). The
 * caller owns the connection until db_release(): db_conn() opens it if
 * needed; db_exec() runs one statement with text parameters (result owned by
 * the arena; same status contract as db_query); db_fail() classifies a failed
 * result the caller got from libpq itself; db_release() closes the
 * connection if the caller left it inside a transaction or a COPY, so the
 * next request starts clean. */
PGconn *db_conn(db_t *db, db_status_t *status);
/* The open connection, NULL once a failure closed it: callers holding on to
 * db_conn()'s pointer across a failed call must ask again. */
PGconn *db_current(const db_t *db);
PGresult *db_exec(db_t *db, arena_t *a, const char *what, const char *sql, int n,
                  const char *const *values, db_status_t *status);
db_status_t db_fail(db_t *db, const char *what, PGresult *res);
void db_release(db_t *db);

#endif
