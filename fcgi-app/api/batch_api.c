/* POST /api/v1/batches and the stored results. The body streams from the
 * FastCGI input through SHA-256 and the batch parser into a COPY of the
 * staging table, inside one transaction that batch_apply() finishes: all
 * of it is stored or none of it, whatever happens to the worker. */
#include "http/app.h"
#include "xml/batch_parse.h"
#include "domain/declaration.h"
#include "api/handlers.h"
#include "core/log.h"
#include "http/problem.h"
#include "auth/user.h"
#include "xml/xml_in.h"

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_READ_CHUNK 65536
#define BATCH_COPY_FLUSH 60000
#define BATCH_LIST_MAX 500

typedef struct {
    request_t *req;
    response_t *res;
    db_t *db;
    int used_db;  /* the connection was taken (release it at the end) */
    arena_t *rec; /* one record's strings, reset per record */
    batch_parser_t *parser;
    batch_head_t head;
    int in_tx;    /* BEGIN sent */
    int copying;  /* COPY ... FROM STDIN open */
    int answered; /* res holds the answer (a refusal) */
    int existing; /* the id was taken: stored_sha is its content's hash */
    char stored_sha[65];
    int64_t deadline_ms;
    char *copy; /* rows waiting to be sent */
    size_t copy_len, copy_cap;
} batch_ctx_t;

static const char *const copy_columns =
    "COPY pg_temp.batch_stage (rec, line, col, ref, title, unit, year, category, classified, soe,"
    " public_inst, cross_dept, vertical, key_project, urgent, urgent_reason, budget_fen, funding,"
    " mode, exemption, sched_start, sched_end, contact_name, contact_phone, contact_email,"
    " summary, res_code, res_name, res_source, res_share, res_frequency, res_aggregated)"
    " FROM STDIN";

static int copy_reserve(batch_ctx_t *c, size_t more)
{
    if (c->copy_len + more <= c->copy_cap)
        return 0;
    size_t cap = c->copy_cap ? c->copy_cap : BATCH_COPY_FLUSH + 4096;
    while (cap < c->copy_len + more)
        cap *= 2;
    char *n = realloc(c->copy, cap);
    if (n == NULL)
        return -1;
    c->copy = n;
    c->copy_cap = cap;
    return 0;
}

/* One field in COPY's text format: NULL as \N, the four characters COPY
 * gives a meaning escaped. */
static int copy_field(batch_ctx_t *c, const char *v, int last)
{
    size_t len = v ? strlen(v) : 2;
    if (copy_reserve(c, 2 * len + 1) < 0)
        return -1;
    char *o = c->copy + c->copy_len;
    if (v == NULL) {
        *o++ = '\\';
        *o++ = 'N';
    } else {
        for (const char *p = v; *p != '\0'; p++) {
            switch (*p) {
            case '\\':
                *o++ = '\\';
                *o++ = '\\';
                break;
            case '\t':
                *o++ = '\\';
                *o++ = 't';
                break;
            case '\n':
                *o++ = '\\';
                *o++ = 'n';
                break;
            case '\r':
                *o++ = '\\';
                *o++ = 'r';
                break;
            default:
                *o++ = *p;
            }
        }
    }
    *o++ = last ? '\n' : '\t';
    c->copy_len = (size_t)(o - c->copy);
    return 0;
}

static int copy_flush(batch_ctx_t *c)
{
    if (c->copy_len == 0)
        return 0;
    PGconn *conn = db_current(c->db);
    if (conn == NULL || PQputCopyData(conn, c->copy, (int)c->copy_len) != 1) {
        log_error("batch: COPY failed: %s", conn ? PQerrorMessage(conn) : "connection closed");
        return -1;
    }
    c->copy_len = 0;
    return 0;
}

static void answer_db(batch_ctx_t *c, db_status_t status)
{
    app_db_problem(c->req, c->res, status);
    c->answered = 1;
}

static PGresult *exec(batch_ctx_t *c, const char *what, const char *sql, int n,
                      const char *const *values)
{
    db_status_t status;
    PGresult *r = db_exec(c->db, c->req->arena, what, sql, n, values, &status);
    if (r == NULL)
        answer_db(c, status);
    return r;
}

/* BEGIN, the caller's scope and batch_begin() as one pipeline would save
 * two round trips per batch: not worth a second code path. */
static int open_batch(void *data, const batch_head_t *head)
{
    batch_ctx_t *c = data;
    request_t *req = c->req;
    c->head = *head;
    db_status_t status;
    c->used_db = 1;
    /* A connection the server dropped since its last use fails at BEGIN:
     * one more try on a new one, as the prepared-statement path does. */
    int begun = 0;
    for (int attempt = 0; attempt < 2 && !begun; attempt++) {
        if (db_conn(c->db, &status) == NULL)
            break;
        begun = db_exec(c->db, req->arena, "batch begin", "BEGIN", 0, NULL, &status) != NULL;
        if (!begun && status != DB_UNAVAILABLE)
            break;
    }
    if (!begun) {
        answer_db(c, status);
        return -1;
    }
    c->in_tx = 1;
    db_actor_t actor;
    app_actor(req, &actor);
    int64_t left = c->deadline_ms - monotonic_ms();
    const char *ctx[] = {actor.user_id,
                         actor.unit,
                         actor.region,
                         actor.roles,
                         actor.classified ? "true" : "false",
                         arena_printf(req->arena, "%lld", (long long)(left > 1000 ? left : 1000))};
    if (exec(c, "batch context",
             "SELECT itpm_set_context($1, $2, $3, $4, $5::boolean),"
             " set_config('statement_timeout', $6, true)",
             6, ctx) == NULL)
        return -1;
    const char *args[] = {head->region, head->id};
    PGresult *r = exec(c, "batch_begin", "SELECT batch_begin($1, $2)", 2, args);
    if (r == NULL)
        return -1;
    if (!PQgetisnull(r, 0, 0)) {
        c->existing = 1;
        snprintf(c->stored_sha, sizeof c->stored_sha, "%s", PQgetvalue(r, 0, 0));
        return -1;
    }
    if (exec(c, "batch copy", copy_columns, 0, NULL) == NULL)
        return -1;
    c->copying = 1;
    return 0;
}

static int stage_record(void *data, long index, int line, int column, xmlNodePtr node)
{
    batch_ctx_t *c = data;
    arena_reset(c->rec);
    declaration_t d;
    problem_error_t err = {0, 0, NULL, 0};
    if (declaration_read(c->rec, node, &d, &err) < 0) {
        batch_parse_error(c->parser, index, err.line > 0 ? err.line : line,
                          err.line > 0 ? err.column : column, err.message);
        return 0;
    }
    const char *fields[] = {arena_printf(c->rec, "%ld", index),
                            arena_printf(c->rec, "%d", line),
                            arena_printf(c->rec, "%d", column),
                            xml_attr(c->rec, node, "ref"),
                            d.title,
                            d.unit,
                            d.year,
                            d.category,
                            d.classified,
                            d.soe,
                            d.public_institution,
                            d.cross_department,
                            d.vertical,
                            d.key,
                            d.urgent,
                            d.urgent_reason,
                            d.budget_fen,
                            d.funding,
                            d.mode,
                            d.exemption,
                            d.start,
                            d.end,
                            d.contact_name,
                            d.contact_phone,
                            d.contact_email,
                            d.summary,
                            d.res_code,
                            d.res_name,
                            d.res_source,
                            d.res_share,
                            d.res_frequency,
                            d.res_aggregated};
    size_t n = sizeof fields / sizeof fields[0];
    for (size_t i = 0; i < n; i++) {
        if (copy_field(c, fields[i], i + 1 == n) < 0) {
            problem_simple(c->req->arena, c->res, 500, "out of memory", NULL);
            c->answered = 1;
            return -1;
        }
    }
    if (c->copy_len >= BATCH_COPY_FLUSH && copy_flush(c) < 0) {
        answer_db(c, db_fail(c->db, "batch copy", NULL));
        return -1;
    }
    return 0;
}

/* Leaves the connection idle whatever state the batch left it in (a
 * failure may have closed it: then the server rolled back already). */
static void abandon(batch_ctx_t *c)
{
    PGconn *conn = db_current(c->db);
    if (conn != NULL && c->copying) {
        PQputCopyEnd(conn, "batch abandoned");
        PGresult *r;
        while ((r = PQgetResult(conn)) != NULL)
            PQclear(r);
    }
    if (conn != NULL && c->in_tx) {
        PGresult *r = PQexec(conn, "ROLLBACK");
        PQclear(r);
    }
    c->copying = 0;
    c->in_tx = 0;
}

static int batch_write(void *ctx, const char *buf, int len)
{
    return request_write(ctx, buf, (size_t)len) < 0 ? -1 : len;
}

/* Answers the stored result of the batch (region, id) in a transaction of
 * its own: the summary, then every code in record order, streamed as the
 * rows come (a result can hold a million codes). */
static int send_result(request_t *req, response_t *res, const char *region, const char *id,
                       int status, int replay)
{
    db_t *db = req->app->db;
    db_status_t st;
    PGconn *conn = db_conn(db, &st);
    if (conn == NULL) {
        app_db_problem(req, res, st);
        return 0;
    }
    db_actor_t actor;
    app_actor(req, &actor);
    const char *ctx[] = {actor.user_id, actor.unit, actor.region, actor.roles,
                         actor.classified ? "true" : "false"};
    const char *args[] = {id, region};
    PGresult *b = NULL;
    if (db_exec(db, req->arena, "batch result", "BEGIN", 0, NULL, &st) == NULL ||
        db_exec(db, req->arena, "batch result",
                "SELECT itpm_set_context($1, $2, $3, $4, $5::boolean)", 5, ctx, &st) == NULL ||
        (b = db_exec(db, req->arena, "batch result",
                     "SELECT id, region, batch_id, kind, submitted::text, records, created, sha256,"
                     " submitter,"
                     " to_char(received AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                     " FROM batches WHERE batch_id = $1 AND ($2::text IS NULL OR region = $2)"
                     " ORDER BY region = current_setting('itpm.region') DESC, received DESC"
                     " LIMIT 1",
                     2, args, &st)) == NULL) {
        app_db_problem(req, res, st);
        goto done;
    }
    if (PQntuples(b) == 0) {
        problem_simple(req->arena, res, 404, "no such batch", NULL);
        goto done;
    }
    /* Each code with the stage the batch gave it, as the first answer
     * said, whatever the project went through since. */
    const char *pk[] = {PQgetvalue(b, 0, 0), PQgetvalue(b, 0, 4)};
    if (!PQsendQueryParams(conn,
                           "SELECT batch_record, code, source_ref,"
                           " CASE WHEN category = 'existing' THEN 'operation'"
                           " WHEN $2::boolean THEN 'endorsement' ELSE 'draft' END"
                           " FROM projects WHERE batch_id = $1 ORDER BY batch_record",
                           2, NULL, pk, NULL, NULL, 0) ||
        !PQsetSingleRowMode(conn)) {
        app_db_problem(req, res, db_fail(db, "batch codes", NULL));
        goto done;
    }
    if (replay)
        response_header(res, "Idempotent-Replayed", "true");
    if (request_stream_head(req, res, status, "application/xml") < 0) {
        if (!res->streamed)
            problem_simple(req->arena, res, 500, "the result could not be written", NULL);
        goto drain;
    }
    xml_out_t *x = xml_out_stream(req->arena, "batchResult", ITPM_NS, batch_write, req);
    static const char *const names[] = {NULL,      "region",  "id",     "kind",      "submitted",
                                        "records", "created", "sha256", "submitter", "received"};
    for (int i = 1; i < 10; i++)
        xml_out_attr(x, names[i], PQgetvalue(b, 0, i));
    PGresult *r;
    while ((r = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(r) == PGRES_SINGLE_TUPLE) {
            xml_out_start(x, "code");
            xml_out_attr(x, "record", PQgetvalue(r, 0, 0));
            if (!PQgetisnull(r, 0, 2))
                xml_out_attr(x, "ref", PQgetvalue(r, 0, 2));
            xml_out_attr(x, "stage", PQgetvalue(r, 0, 3));
            xml_out_text(x, PQgetvalue(r, 0, 1));
            xml_out_end(x);
        } else if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            log_error("rid=%s batch result: %s", req->request_id, PQresultErrorMessage(r));
        }
        PQclear(r);
    }
    if (xml_out_close(x) < 0)
        log_warn("rid=%s batch result not written in full", req->request_id);
    goto done;
drain:
    while ((r = PQgetResult(conn)) != NULL)
        PQclear(r);
done:
    conn = db_current(db);
    if (conn != NULL && PQtransactionStatus(conn) != PQTRANS_IDLE) {
        PGresult *e = PQexec(conn, "COMMIT");
        PQclear(e);
    }
    db_release(db);
    return 0;
}

/* The rows of batch_check()'s answer (record order) as errors. */
static problem_error_t *failures_of(arena_t *a, PGresult *r)
{
    int n = PQntuples(r);
    problem_error_t *errs = arena_calloc(a, (size_t)n * sizeof *errs + 1);
    for (int i = 0; i < n; i++) {
        errs[i].record = PQgetisnull(r, i, 2) ? 0 : atol(PQgetvalue(r, i, 2));
        errs[i].line = PQgetisnull(r, i, 3) ? 0 : atoi(PQgetvalue(r, i, 3));
        errs[i].column = PQgetisnull(r, i, 4) ? 0 : atoi(PQgetvalue(r, i, 4));
        errs[i].message = arena_strdup(a, PQgetvalue(r, i, 5));
    }
    return errs;
}

/* The failures batch_apply() returned, as the problem document. */
static void answer_failures(batch_ctx_t *c, PGresult *r)
{
    arena_t *a = c->req->arena;
    int n = PQntuples(r);
    problem_error_t *errs = failures_of(a, r);
    int status = atoi(PQgetvalue(r, 0, 7));
    problem_t p = {.status = status,
                   .detail = status == 422 ? "records of the batch are invalid"
                             : status == 403
                                 ? "records of the batch are outside what you may declare"
                                 : "records of the batch conflict with the rules or "
                                   "with existing projects",
                   .rule = PQgetisnull(r, 0, 8) ? NULL : arena_strdup(a, PQgetvalue(r, 0, 8)),
                   .errors = errs,
                   .nerrors = (size_t)n,
                   .nerrors_total = (size_t)atoll(PQgetvalue(r, 0, 6))};
    problem_respond(a, c->res, &p);
    c->answered = 1;
}

/* Ends the COPY of the staged records. 0, or -1 answered. */
static int stage_end(batch_ctx_t *c)
{
    if (copy_flush(c) < 0 || PQputCopyEnd(db_current(c->db), NULL) != 1) {
        answer_db(c, db_fail(c->db, "batch copy", NULL));
        return -1;
    }
    c->copying = 0;
    PGconn *conn = db_current(c->db);
    PGresult *r = PQgetResult(conn);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    PGresult *more;
    while ((more = PQgetResult(conn)) != NULL)
        PQclear(more);
    if (st != PGRES_COMMAND_OK) {
        answer_db(c, db_fail(c->db, "batch copy", r));
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

/* The set-based checks over the staged records: their failures (no rows
 * when none), or NULL answered. With write, batch_apply(), which also
 * writes the batch when they pass; else batch_check(), which writes
 * nothing. */
static PGresult *check_staged(batch_ctx_t *c, const char *sha, long long bytes, int write)
{
    request_t *req = c->req;
    if (stage_end(c) < 0)
        return NULL;
    const char *max_errors = arena_printf(req->arena, "%d", req->conf->batch_max_errors);
    const char *submit = c->head.submit ? "true" : "false";
    if (!write) {
        const char *args[] = {c->head.region, c->head.kind, submit, max_errors};
        return exec(c, "batch_check", "SELECT * FROM batch_check($1, $2, $3::boolean, $4::integer)",
                    4, args);
    }
    const char *args[] = {c->head.region,
                          c->head.id,
                          c->head.kind,
                          submit,
                          sha,
                          arena_printf(req->arena, "%lld", bytes),
                          req->remote_addr,
                          req->request_id,
                          max_errors};
    db_status_t status;
    PGresult *r = db_exec(c->db, req->arena, "batch_apply",
                          "SELECT * FROM batch_apply($1, $2, $3, $4::boolean, $5, $6::bigint, $7,"
                          " $8, $9::integer)",
                          9, args, &status);
    if (r != NULL)
        return r;
    /* batch_check() names the records whose ref a project in the caller's
     * sight has taken; one outside it (classified, say) is only met by the
     * unique index as the projects are written. */
    if (status == DB_CONFLICT && strcmp(db_last_constraint(c->db), "projects_source_ref") == 0) {
        problem_simple(req->arena, c->res, 409,
                       arena_printf(req->arena,
                                    "a ref of the batch is already taken in region %s by a "
                                    "project outside what you may see",
                                    c->head.region),
                       "batch_conflict");
        c->answered = 1;
        return NULL;
    }
    answer_db(c, status);
    return NULL;
}

/* The body is complete and every record staged: the set-based checks and,
 * when they pass, the commit. 0 when stored. */
static int apply(batch_ctx_t *c, const char *sha, long long bytes)
{
    PGresult *f = check_staged(c, sha, bytes, 1);
    if (f == NULL)
        return -1;
    if (PQntuples(f) > 0) {
        answer_failures(c, f);
        return -1;
    }
    if (exec(c, "batch commit", "COMMIT", 0, NULL) == NULL)
        return -1;
    c->in_tx = 0;
    return 0;
}

static void hex(const unsigned char *d, unsigned n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[(size_t)2 * n] = '\0';
}

static void answer_parse(batch_ctx_t *c, batch_parse_status_t ps, PGresult *failures)
{
    arena_t *a = c->req->arena;
    size_t kept, total;
    const problem_error_t *errs = batch_parser_errors(c->parser, &kept, &total);
    if (ps == BATCH_PARSE_MALFORMED) {
        problem_error_t *e = arena_calloc(a, sizeof *e);
        batch_parser_position(c->parser, &e->line, &e->column);
        e->message = arena_strdup(a, batch_parser_malformed(c->parser));
        problem_t p = {.status = 400,
                       .detail = "the body is not an acceptable XML document",
                       .errors = e,
                       .nerrors = 1};
        problem_respond(a, c->res, &p);
    } else if (ps == BATCH_PARSE_TOO_MANY) {
        problem_simple(
            a, c->res, 413,
            arena_printf(a, "a batch holds at most %d records", c->req->conf->batch_max_records),
            NULL);
    } else if (ps == BATCH_PARSE_TOO_LARGE) {
        problem_simple(a, c->res, 413,
                       arena_printf(a, "record %ld is larger than %ld bytes",
                                    batch_parser_records(c->parser), BATCH_MAX_RECORD_BYTES),
                       NULL);
    } else {
        /* The records the schema refused, and in record order among them
         * those the rules refuse (failures: batch_check() over the records
         * staged meanwhile). */
        size_t nf = failures != NULL ? (size_t)PQntuples(failures) : 0;
        const problem_error_t *f = nf > 0 ? failures_of(a, failures) : NULL;
        size_t max = (size_t)c->req->conf->batch_max_errors;
        problem_error_t *out = arena_calloc(a, (kept + nf) * sizeof *out + 1);
        size_t n = 0, i = 0, j = 0;
        for (; n < max && (i < kept || j < nf); n++) {
            if (i < kept && (j >= nf || errs[i].record <= f[j].record)) {
                out[n] = errs[i++];
                out[n].message = arena_strdup(a, out[n].message);
            } else {
                out[n] = f[j++];
            }
        }
        size_t ftotal = nf > 0 ? (size_t)atoll(PQgetvalue(failures, 0, 6)) : 0;
        problem_t p = {.status = 422,
                       .detail = "the batch does not match the schema or its rules",
                       .errors = out,
                       .nerrors = n,
                       .nerrors_total = total + ftotal};
        problem_respond(a, c->res, &p);
    }
    c->answered = 1;
}

static void ctx_free(batch_ctx_t *c)
{
    batch_parser_free(c->parser);
    if (c->rec != NULL)
        arena_destroy(c->rec);
    free(c->copy);
    /* A batch's trees and staging buffers come from malloc's heap, which
     * keeps what was freed: handed back, so a worker does not go on holding
     * the peak of its largest batch. */
    malloc_trim(0);
}

int handle_batch_submit(request_t *req, response_t *res)
{
    static const char *const types[] = {"application/xml", "text/xml", NULL};
    if (request_require_type(req, res, types) < 0)
        return 0;
    const conf_t *conf = req->conf;
    if (req->content_length > conf->batch_max_body) {
        problem_simple(
            req->arena, res, 413,
            arena_printf(req->arena, "a batch is at most %lld bytes", conf->batch_max_body), NULL);
        return 0;
    }
    scoreboard_request_timeout(req->app->sb, req->app->slot, conf->batch_timeout);
    batch_ctx_t c = {.req = req, .res = res, .db = req->app->db};
    c.deadline_ms = monotonic_ms() + (int64_t)conf->batch_timeout * 1000;
    batch_handlers_t h = {&c, open_batch, stage_record};
    c.rec = arena_create(16384);
    c.parser = batch_parser_new(&h, (size_t)conf->batch_max_errors, conf->batch_max_records);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char *buf = arena_alloc(req->arena, BATCH_READ_CHUNK);
    if (c.rec == NULL || c.parser == NULL || md == NULL ||
        EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        problem_simple(req->arena, res, 500, "out of memory", NULL);
        goto done;
    }
    long long bytes = 0;
    int parsing = 1, timed_out = 0;
    for (;;) {
        int got = FCGX_GetStr(buf, BATCH_READ_CHUNK, req->in);
        if (got <= 0)
            break;
        bytes += got;
        if (bytes > conf->batch_max_body) {
            problem_simple(
                req->arena, res, 413,
                arena_printf(req->arena, "a batch is at most %lld bytes", conf->batch_max_body),
                NULL);
            goto done;
        }
        if (monotonic_ms() > c.deadline_ms) {
            timed_out = 1;
            break;
        }
        EVP_DigestUpdate(md, buf, (size_t)got);
        /* A refused batch is still read to its end (nginx sends all of it,
         * and a taken id is judged by the hash of all of it). */
        if (parsing && batch_parser_feed(c.parser, buf, (size_t)got) < 0)
            parsing = 0;
    }
    if (timed_out) {
        log_error("rid=%s batch past %d s after %lld bytes: rolled back", req->request_id,
                  conf->batch_timeout, bytes);
        response_header(res, "Retry-After", "60");
        problem_simple(req->arena, res, 503,
                       arena_printf(req->arena,
                                    "the batch took longer than %d s and was not stored",
                                    conf->batch_timeout),
                       NULL);
        goto done;
    }
    if (req->content_length >= 0 && bytes != req->content_length) {
        problem_simple(req->arena, res, 400, "the body is shorter than Content-Length", NULL);
        goto done;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    char sha[2 * EVP_MAX_MD_SIZE + 1];
    EVP_DigestFinal_ex(md, digest, &dlen);
    hex(digest, dlen, sha);
    if (c.answered)
        goto done;
    if (c.existing) {
        abandon(&c);
        if (strcmp(sha, c.stored_sha) != 0) {
            problem_simple(req->arena, res, 409,
                           arena_printf(req->arena,
                                        "batch %s of region %s was already sent with other content",
                                        c.head.id, c.head.region),
                           "batch_conflict");
            goto done;
        }
        /* The first result as it was answered, 201 included: a sender
         * retrying after a lost answer cannot tell, and need not. */
        send_result(req, res, c.head.region, c.head.id, 201, 1);
        goto done;
    }
    batch_parse_status_t ps = batch_parser_finish(c.parser);
    if (ps != BATCH_PARSE_OK) {
        PGresult *failures = NULL;
        if (ps == BATCH_PARSE_INVALID && c.copying &&
            (failures = check_staged(&c, sha, bytes, 0)) == NULL)
            goto done;
        answer_parse(&c, ps, failures);
        goto done;
    }
    if (apply(&c, sha, bytes) < 0)
        goto done;
    int64_t ms = (monotonic_us() - req->start_us) / 1000;
    long records = batch_parser_records(c.parser);
    log_info("rid=%s batch %s/%s: %ld records, %lld bytes in %lld ms (%.0f records/s)",
             req->request_id, c.head.region, c.head.id, records, bytes, (long long)ms,
             ms > 0 ? (double)records * 1000.0 / (double)ms : (double)records);
    send_result(req, res, c.head.region, c.head.id, 201, 0);
done:
    if (c.used_db) {
        abandon(&c);
        db_release(c.db);
    }
    EVP_MD_CTX_free(md);
    ctx_free(&c);
    return 0;
}

int handle_batch_get(request_t *req, response_t *res)
{
    const char *region = request_query(req, "region");
    return send_result(req, res, region, req->params[0], 200, 0);
}

int handle_batch_list(request_t *req, response_t *res)
{
    static const db_stmt_t stmt_count = {
        "batch_count", "SELECT count(*) FROM batches WHERE ($1::text IS NULL OR region = $1)", 1,
        1};
    static const db_stmt_t stmt_list = {
        "batch_list",
        "SELECT region, batch_id, kind, submitted::text, records, created, sha256, submitter,"
        " to_char(received AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
        " FROM batches WHERE ($1::text IS NULL OR region = $1)"
        " ORDER BY received DESC, id DESC OFFSET $2::integer LIMIT $3::integer",
        3, 1};
    const char *region = request_query(req, "region");
    const char *offset = request_query(req, "offset");
    const char *limit = request_query(req, "limit");
    long off = offset ? strtol(offset, NULL, 10) : 0;
    long lim = limit ? strtol(limit, NULL, 10) : 100;
    if ((offset && (strspn(offset, "0123456789") != strlen(offset) || offset[0] == '\0' ||
                    strlen(offset) > 9)) ||
        (limit &&
         (strspn(limit, "0123456789") != strlen(limit) || lim < 1 || lim > BATCH_LIST_MAX)) ||
        (region && (strlen(region) != 6 || strspn(region, "0123456789") != 6))) {
        problem_simple(req->arena, res, 400,
                       arena_printf(req->arena,
                                    "region is six digits, offset a number, limit 1 to %d",
                                    BATCH_LIST_MAX),
                       NULL);
        return 0;
    }
    const char *values[] = {region, arena_printf(req->arena, "%ld", off),
                            arena_printf(req->arena, "%ld", lim)};
    const db_stmt_t *stmts[] = {&stmt_count, &stmt_list};
    const char *const *vals[] = {values, values};
    PGresult *out[2];
    if (app_batch(req, res, stmts, vals, 2, out) < 0)
        return 0;
    PGresult *r = out[1];
    xml_out_t *x = xml_out_begin(req->arena, "batches", ITPM_NS);
    int n = PQntuples(r);
    xml_out_attr(x, "total", PQgetvalue(out[0], 0, 0));
    xml_out_attr_int(x, "offset", off);
    xml_out_attr_int(x, "limit", lim);
    static const char *const names[] = {"region",  "id",     "kind",      "submitted", "records",
                                        "created", "sha256", "submitter", "received"};
    for (int i = 0; i < n; i++) {
        xml_out_start(x, "batch");
        for (int k = 0; k < 9; k++)
            xml_out_attr(x, names[k], PQgetvalue(r, i, k));
        xml_out_end(x);
    }
    return app_send_xml(req, res, x, 200);
}
