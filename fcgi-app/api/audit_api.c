/* /api/v1/audit: the trail (filtered, paged by id) and the chain check.
 * Both flush the WAL before answering: a write's record is visible from its
 * commit, a moment before its flush (fcgi-app/db/db.c), and a record or hash an
 * auditor was shown must not be taken back by a crash. */
#include "http/app.h"
#include "api/handlers.h"
#include "http/problem.h"
#include "xml/xml_in.h"
#include "xml/xml_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_PAGE_DEFAULT 100
#define AUDIT_PAGE_MAX 1000
#define AUDIT_OFFSET_MAX 1000000

static const db_stmt_t stmt_audit_list = {
    "audit_list",
    "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), actor, role,"
    " client_addr, request_id, action, object, summary, encode(hash, 'hex')"
    " FROM audit_log"
    " WHERE ($1::timestamptz IS NULL OR at >= $1::timestamptz)"
    " AND ($2::timestamptz IS NULL OR at < $2::timestamptz)"
    " AND ($3::text IS NULL OR actor = $3) AND ($4::text IS NULL OR object = $4)"
    " AND ($8::text IS NULL OR action = $8) AND id > coalesce($5::bigint, 0)"
    " ORDER BY id LIMIT $6::int OFFSET $7::int",
    8, 1};

static const db_stmt_t stmt_audit_verify = {
    "audit_verify", "SELECT records, first_broken, reason FROM audit_verify()", 0, 1};

/* An integer query parameter within [min, max]; def when absent. */
static int int_param(request_t *req, const char *name, long long def, long long min, long long max,
                     long long *out)
{
    const char *v = request_query(req, name);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

int handle_audit_list(request_t *req, response_t *res)
{
    /* Paged by the last id seen (after, as next gives it) or, as lists
     * usually are, by offset. */
    long long limit, after, offset;
    if (int_param(req, "limit", AUDIT_PAGE_DEFAULT, 1, AUDIT_PAGE_MAX, &limit) < 0 ||
        int_param(req, "after", 0, 1, 1LL << 62, &after) < 0 ||
        int_param(req, "offset", 0, 0, AUDIT_OFFSET_MAX, &offset) < 0) {
        problem_simple(req->arena, res, 400,
                       "limit must be 1..1000, after a record id and offset 0..1000000", NULL);
        return -1;
    }
    const char *values[] = {request_query(req, "from"), request_query(req, "to"),
                            request_query(req, "actor"), request_query(req, "object"),
                            arena_printf(req->arena, "%lld", after),
                            /* One more than asked: whether a next page exists. */
                            arena_printf(req->arena, "%lld", limit + 1),
                            arena_printf(req->arena, "%lld", offset), request_query(req, "action")};
    /* In the caller's context: a record about a project is read only by
     * whoever may read the project (sql/024_audit_scope.sql). */
    const db_stmt_t *stmts[] = {&stmt_audit_list};
    const char *const *vals[] = {values};
    PGresult *rs;
    if (app_batch(req, res, stmts, vals, 1, &rs) < 0)
        return -1;
    db_status_t status;
    if (db_flush(req->app->db, req->arena, &status) < 0) {
        app_db_problem(req, res, status);
        return -1;
    }
    int n = PQntuples(rs);
    xml_out_t *x = xml_out_begin(req->arena, "auditRecords", ITPM_NS);
    if (n > limit) {
        n = (int)limit;
        xml_out_attr(x, "next", PQgetvalue(rs, n - 1, 0));
    }
    static const char *const fields[] = {"at",     "actor",  "role",    "address", "requestId",
                                         "action", "object", "summary", "hash"};
    for (int i = 0; i < n; i++) {
        xml_out_start(x, "record");
        xml_out_attr(x, "id", PQgetvalue(rs, i, 0));
        for (int f = 0; f < 9; f++)
            xml_out_text_elem(x, fields[f], PQgetvalue(rs, i, f + 1));
        xml_out_end(x);
    }
    return app_send_xml(req, res, x, 200);
}

int handle_audit_verify(request_t *req, response_t *res)
{
    db_status_t status;
    PGresult *rs = db_query(req->app->db, req->arena, &stmt_audit_verify, NULL, &status);
    if (rs == NULL || db_flush(req->app->db, req->arena, &status) < 0) {
        app_db_problem(req, res, status);
        return -1;
    }
    int broken = !PQgetisnull(rs, 0, 1);
    xml_out_t *x = xml_out_begin(req->arena, "auditVerification", ITPM_NS);
    xml_out_attr(x, "ok", broken ? "false" : "true");
    xml_out_attr(x, "records", PQgetvalue(rs, 0, 0));
    if (broken) {
        xml_out_start(x, "firstBroken");
        xml_out_attr(x, "id", PQgetvalue(rs, 0, 1));
        xml_out_attr(x, "reason", PQgetvalue(rs, 0, 2));
        xml_out_end(x);
    }
    return app_send_xml(req, res, x, 200);
}
