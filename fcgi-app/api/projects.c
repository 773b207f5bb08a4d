/* /api/v1/projects: declarations (create, read, update, list), transitions
 * and the history. Every statement runs with the caller's scope set for
 * row-level security, and the writes are SQL functions that take their
 * decisions and write event and audit in the same transaction. */
#include "http/app.h"
#include "auth/auth.h"
#include "domain/declaration.h"
#include "api/handlers.h"
#include "core/log.h"
#include "domain/money.h"
#include "http/problem.h"
#include "xml/xml_in.h"
#include "xml/xml_out.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The columns of project_heads and project_documents (sql/007_hot_paths.sql,
 * sql/009_resource_text.sql): the project as it is written, then its id;
 * project_documents then has six columns that are always NULL (its rows
 * held one data resource each before 009) and the resources as text. */
enum {
    C_CODE, C_VERSION, C_STAGE, C_TITLE, C_UNIT, C_YEAR, C_CATEGORY, C_CLASSIFIED, C_SOE,
    C_PUBLIC, C_CROSS, C_VERTICAL, C_KEY, C_URGENT, C_URGENT_REASON, C_BUDGET, C_FUNDING,
    C_MODE, C_EXEMPTION, C_START, C_END, C_CONTACT_NAME, C_CONTACT_PHONE, C_CONTACT_EMAIL,
    C_SUMMARY, C_REGION, C_APPROVED, C_LIST_YEAR, C_RETURN_REASON, C_STAGE_SINCE, C_CREATED,
    C_UPDATED, C_ID,
    C_RESOURCES = C_ID + 7
};

/* The project with its data resources in one row: the resources are kept
 * as text in the project's row, since joining their own rows cost the
 * server a third of the read. */
static const db_stmt_t stmt_get = {"project_get", "SELECT * FROM project_rows($1)", 1, 1};

#define PROJECT_FILTER                                                                             \
    " WHERE ($1::project_stage IS NULL OR p.stage = $1::project_stage)"                            \
    " AND ($2::text IS NULL OR p.unit = $2) AND ($3::text IS NULL OR p.region = $3)"               \
    " AND ($4::int IS NULL OR p.year = $4::int)"                                                   \
    " AND ($5::project_category IS NULL OR p.category = $5::project_category)"                     \
    " AND ($6::text IS NULL OR p.title ILIKE '%' || replace(replace(replace($6, '\\', '\\\\'),"   \
    " '%', '\\%'), '_', '\\_') || '%')"

/* Each filter is optional ($n IS NULL OR ...): such a statement is only
 * planned well with its actual values, so the list runs with custom plans. */
static const db_stmt_t stmt_custom_plans = {
    "project_list_custom_plans",
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true)", 0, 1};

/* A page walks the code index and stops at its limit, taking only ids;
 * only the page's rows are then read as written: formatting every row the
 * offset skips (three to_char each) cost twice the walk at offset 5000. */
static const db_stmt_t stmt_list = {
    "project_list",
    "SELECT * FROM project_heads h WHERE h.id = ANY (ARRAY(SELECT p.id FROM projects p"
    PROJECT_FILTER " ORDER BY p.code LIMIT $7::int OFFSET $8::int)) ORDER BY h.code",
    8, 1};

/* The total stops counting at PROJECT_COUNT_CAP so a page of a huge list
 * stays cheap (counting 2,000 rows in scope costs 1-3 ms, 100,000 some
 * 35 ms); the reply says when the total is a lower bound. */
#define PROJECT_COUNT_CAP 2000
static const db_stmt_t stmt_count = {
    "project_count",
    "SELECT count(*) FROM (SELECT 1 FROM projects p" PROJECT_FILTER " LIMIT $7::int) c", 7, 1};

/* The writes answer with project_documents rows, as stmt_get: the project
 * as they left it. */
static const db_stmt_t stmt_create = {
    "project_create",
    "SELECT * FROM project_create($1, $2::int, $3, $4, $5::boolean, $6::boolean, $7::boolean,"
    " $8::boolean, $9::boolean, $10::boolean, $11::boolean, $12, $13::bigint, $14, $15, $16,"
    " $17::date, $18::date, $19, $20, $21, $22, $23::text[], $24::text[], $25::text[],"
    " $26::text[], $27::text[], $28::boolean[], $29, $30)",
    30, 0};

static const db_stmt_t stmt_update = {
    "project_update",
    "SELECT * FROM project_update($1, $2::int, $3, $4::int, $5, $6::boolean, $7::boolean,"
    " $8::boolean, $9::boolean, $10::boolean, $11::boolean, $12::boolean, $13, $14::bigint, $15,"
    " $16, $17, $18::date, $19::date, $20, $21, $22, $23, $24, $25::text[], $26::text[],"
    " $27::text[], $28::text[], $29::text[], $30::boolean[], $31, $32)",
    32, 0};

static const db_stmt_t stmt_version = {"project_version",
                                       "SELECT version FROM projects WHERE code = $1", 1, 1};
static const db_stmt_t stmt_transition = {
    "project_transition",
    "SELECT * FROM project_transition($1, $2, $3::int, $4, $5::bigint, $6::int, $7, $8)", 8, 0};

static const db_stmt_t stmt_events = {
    "project_events",
    "SELECT e.id, to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), e.actor,"
    " e.role, e.action, e.from_stage, e.to_stage, e.reason, e.amount_fen, e.list_year"
    " FROM project_events e JOIN projects p ON p.id = e.project_id"
    " WHERE p.code = $1 ORDER BY e.id",
    1, 1};

static const char *const xml_types[] = {"application/xml", "text/xml", NULL};

static int code_valid(const char *code)
{
    static const char shape[] = "999999-9999-99999";
    if (strlen(code) != sizeof shape - 1)
        return 0;
    for (size_t i = 0; shape[i] != '\0'; i++)
        if (shape[i] == '9' ? !isdigit((unsigned char)code[i]) : code[i] != '-')
            return 0;
    return 1;
}

static const char *cell(const PGresult *rs, int row, int col)
{
    return PQgetisnull(rs, row, col) ? NULL : PQgetvalue(rs, row, col);
}

/* A NOT NULL column's text. */
static const char *val(const PGresult *rs, int row, int col)
{
    const char *v = PQgetvalue(rs, row, col);
    return v != NULL ? v : "";
}

static void money_elem(xml_out_t *x, arena_t *a, const char *name, const char *fen)
{
    if (fen == NULL)
        return;
    char buf[32];
    money_format(strtoll(fen, NULL, 10), buf, sizeof buf);
    xml_out_text_elem(x, name, arena_strdup(a, buf));
}

static void bool_attr(xml_out_t *x, const char *name, const char *pgbool)
{
    xml_out_attr(x, name, pgbool != NULL && pgbool[0] == 't' ? "true" : "false");
}

/* The fields of one resource record of projects.resources. */
enum { R_CODE, R_NAME, R_SOURCE, R_SHARE, R_FREQUENCY, R_AGGREGATED, R_FIELDS };

/* <dataResources> from projects.resources (sql/009_resource_text.sql):
 * records in code order, separated by U+001E, each of R_FIELDS fields
 * separated by U+001F. */
static void resources_write(xml_out_t *x, arena_t *a, const char *text)
{
    xml_out_start(x, "dataResources");
    char *rest = text != NULL ? arena_strdup(a, text) : NULL;
    while (rest != NULL && rest[0] != '\0') {
        char *record = rest;
        rest = strchr(record, '\x1e');
        if (rest != NULL)
            *rest++ = '\0';
        const char *f[R_FIELDS];
        char *p = record;
        int n = 0;
        while (p != NULL && n < R_FIELDS) {
            f[n++] = p;
            p = strchr(p, '\x1f');
            if (p != NULL)
                *p++ = '\0';
        }
        if (n != R_FIELDS || p != NULL) {
            log_error("projects.resources holds a record that is not %d fields", R_FIELDS);
            continue;
        }
        xml_out_start(x, "resource");
        xml_out_attr(x, "code", f[R_CODE]);
        xml_out_attr(x, "source", f[R_SOURCE]);
        xml_out_attr(x, "share", f[R_SHARE]);
        xml_out_attr(x, "frequency", f[R_FREQUENCY]);
        bool_attr(x, "aggregated", f[R_AGGREGATED]);
        xml_out_text_elem(x, "name", f[R_NAME]);
        xml_out_end(x);
    }
    xml_out_end(x);
}

/* The attributes and children of a <project> (already started) from one
 * row; with_resources: rs has project_documents' columns (stmt_get's). */
static void project_write(xml_out_t *x, arena_t *a, const PGresult *rs, int row, int with_resources)
{
    xml_out_attr(x, "code", cell(rs, row, C_CODE));
    xml_out_attr(x, "version", cell(rs, row, C_VERSION));
    xml_out_attr(x, "stage", cell(rs, row, C_STAGE));
    xml_out_text_elem(x, "title", cell(rs, row, C_TITLE));
    xml_out_text_elem(x, "unit", cell(rs, row, C_UNIT));
    xml_out_text_elem(x, "year", cell(rs, row, C_YEAR));
    xml_out_text_elem(x, "category", cell(rs, row, C_CATEGORY));
    xml_out_start(x, "flags");
    bool_attr(x, "classified", cell(rs, row, C_CLASSIFIED));
    bool_attr(x, "soe", cell(rs, row, C_SOE));
    bool_attr(x, "publicInstitution", cell(rs, row, C_PUBLIC));
    bool_attr(x, "crossDepartment", cell(rs, row, C_CROSS));
    bool_attr(x, "vertical", cell(rs, row, C_VERTICAL));
    bool_attr(x, "key", cell(rs, row, C_KEY));
    xml_out_end(x);
    if (val(rs, row, C_URGENT)[0] == 't') {
        xml_out_start(x, "urgent");
        if (val(rs, row, C_URGENT_REASON)[0] != '\0')
            xml_out_attr(x, "reason", cell(rs, row, C_URGENT_REASON));
        xml_out_end(x);
    }
    money_elem(x, a, "budget", cell(rs, row, C_BUDGET));
    xml_out_text_elem(x, "funding", cell(rs, row, C_FUNDING));
    xml_out_start(x, "construction");
    xml_out_attr(x, "mode", cell(rs, row, C_MODE));
    if (val(rs, row, C_EXEMPTION)[0] != '\0')
        xml_out_attr(x, "reason", cell(rs, row, C_EXEMPTION));
    xml_out_end(x);
    if (cell(rs, row, C_START) != NULL && cell(rs, row, C_END) != NULL) {
        xml_out_start(x, "schedule");
        xml_out_attr(x, "start", cell(rs, row, C_START));
        xml_out_attr(x, "end", cell(rs, row, C_END));
        xml_out_end(x);
    }
    if (val(rs, row, C_CONTACT_NAME)[0] != '\0') {
        xml_out_start(x, "contact");
        xml_out_attr(x, "name", cell(rs, row, C_CONTACT_NAME));
        if (val(rs, row, C_CONTACT_PHONE)[0] != '\0')
            xml_out_attr(x, "phone", cell(rs, row, C_CONTACT_PHONE));
        if (val(rs, row, C_CONTACT_EMAIL)[0] != '\0')
            xml_out_attr(x, "email", cell(rs, row, C_CONTACT_EMAIL));
        xml_out_end(x);
    }
    if (val(rs, row, C_SUMMARY)[0] != '\0')
        xml_out_text_elem(x, "summary", cell(rs, row, C_SUMMARY));
    if (with_resources)
        resources_write(x, a, cell(rs, row, C_RESOURCES));
    xml_out_text_elem(x, "region", cell(rs, row, C_REGION));
    const char *approved = cell(rs, row, C_APPROVED);
    money_elem(x, a, "approvedBudget", approved);
    if (approved != NULL) {
        long long req_fen = strtoll(val(rs, row, C_BUDGET), NULL, 10);
        long long app_fen = strtoll(approved, NULL, 10);
        /* 1 - approved/requested, to four decimals, in integers. */
        long long rate = req_fen > 0 ? ((req_fen - app_fen) * 10000 + req_fen / 2) / req_fen : 0;
        xml_out_text_elem(x, "reductionRate",
                          arena_printf(a, "%lld.%04lld", rate / 10000, rate % 10000));
    }
    xml_out_text_elem(x, "listYear", cell(rs, row, C_LIST_YEAR));
    if (val(rs, row, C_RETURN_REASON)[0] != '\0')
        xml_out_text_elem(x, "returnReason", cell(rs, row, C_RETURN_REASON));
    xml_out_text_elem(x, "stageSince", cell(rs, row, C_STAGE_SINCE));
    xml_out_text_elem(x, "created", cell(rs, row, C_CREATED));
    xml_out_text_elem(x, "updated", cell(rs, row, C_UPDATED));
}

/* Answers with the project in stmt_get's rows. */
static int send_project(request_t *req, response_t *res, const PGresult *rs, int status)
{
    if (PQntuples(rs) < 1) {
        problem_simple(req->arena, res, 404, "no such project", NULL);
        return -1;
    }
    if (PQnfields(rs) != C_RESOURCES + 1) {
        log_error("a project answer has %d columns, not the %d of project_documents",
                  PQnfields(rs), C_RESOURCES + 1);
        problem_simple(req->arena, res, 500, "the project could not be read", NULL);
        return -1;
    }
    xml_out_t *doc = xml_out_begin(req->arena, "project", ITPM_NS);
    project_write(doc, req->arena, rs, 0, 1);
    response_header(res, "ETag", arena_printf(req->arena, "\"%s\"", cell(rs, 0, C_VERSION)));
    if (status == 201)
        response_header(res, "Location",
                        arena_printf(req->arena, "/api/v1/projects/%s", cell(rs, 0, C_CODE)));
    return app_send_xml(req, res, doc, status);
}

/* Versions one If-Match may name; more are not looked at. */
#define IF_MATCH_MAX 32

/* A version as its ETag's text: 1 to 9 digits, no leading zero (a strong
 * comparison is of the text: "03" is not "3"). */
static int version_text(const char *s, size_t n)
{
    return n >= 1 && n <= 9 && s[0] != '0' && strspn(s, "0123456789") >= n;
}

/* The version the precondition holds for into *version (RFC 9110, 13.1.1:
 * a list of entity tags, compared strongly, so a weak tag matches nothing).
 * NULL when there is no If-Match, or only "*": the database then answers
 * 428. "*" holds for any version, so two reviewers sending it at once would
 * both act, the second on a stage nobody reviewed: a change must name the
 * version it was based on (SPEC: exactly one wins). "0", which no project
 * has, when it names no current version or is malformed: the database
 * answers 412. Both only once every other check has passed (a caller who
 * may not act, or not on this project, is told that instead). A list of
 * several versions is resolved against the current version, read in the
 * caller's scope; the write compares again under its lock. -1 with res set
 * when that read fails. */
static int if_match_version(request_t *req, response_t *res, const char *code, const char **version)
{
    *version = NULL;
    const char *h = request_header(req, "If-Match");
    if (h == NULL)
        return 0;
    h += strspn(h, " \t");
    size_t len = strlen(h);
    while (len > 0 && (h[len - 1] == ' ' || h[len - 1] == '\t'))
        len--;
    if (len == 0 || (len == 1 && h[0] == '*'))
        return 0;
    *version = "0";
    const char *named[IF_MATCH_MAX];
    size_t nnamed = 0;
    for (size_t i = 0; i < len;) {
        i += strspn(h + i, " \t,");
        if (i >= len)
            break;
        int weak = strncmp(h + i, "W/", 2) == 0;
        i += weak ? 2 : 0;
        const char *close = h[i] == '"' ? memchr(h + i + 1, '"', len - i - 1) : NULL;
        if (close == NULL)
            return 0;
        size_t n = (size_t)(close - (h + i + 1));
        if (!weak && version_text(h + i + 1, n) && nnamed < IF_MATCH_MAX)
            named[nnamed++] = arena_strndup(req->arena, h + i + 1, n);
        i = (size_t)(close - h) + 1;
        i += strspn(h + i, " \t");
        if (i < len && h[i] != ',')
            return 0;
    }
    if (nnamed <= 1) {
        if (nnamed == 1)
            *version = named[0];
        return 0;
    }
    const db_stmt_t *stmts[] = {&stmt_version};
    const char *values[] = {code};
    const char *const *vals[] = {values};
    PGresult *out[1];
    if (app_batch(req, res, stmts, vals, 1, out) < 0)
        return -1;
    if (PQntuples(out[0]) != 1)
        return 0;
    const char *current = PQgetvalue(out[0], 0, 0);
    for (size_t i = 0; i < nnamed; i++)
        if (strcmp(named[i], current) == 0)
            *version = current;
    return 0;
}

/* The <project> document of a POST or PUT, read into d; -1 with res set. */
static int read_declaration(request_t *req, response_t *res, declaration_t *d)
{
    if (request_require_type(req, res, xml_types) < 0 || request_read_body(req, res) < 0)
        return -1;
    xmlDocPtr doc = xml_in_parse(req->arena, req->body, req->body_len, "project", res);
    if (doc == NULL)
        return -1;
    problem_error_t *err = arena_calloc(req->arena, sizeof *err);
    if (declaration_read(req->arena, xmlDocGetRootElement(doc), d, err) < 0) {
        problem_t p = {.status = 422,
                       .detail = "the declaration breaks a rule of its schema",
                       .rule = d->rule,
                       .errors = err,
                       .nerrors = 1};
        problem_respond(req->arena, res, &p);
        return -1;
    }
    return 0;
}

/* Runs a write (create, update, transition), which answers with the project
 * as it left it, in the same transaction: one round trip. */
static int write_project(request_t *req, response_t *res, const db_stmt_t *write,
                         const char *const *values, int status)
{
    const db_stmt_t *stmts[] = {write};
    const char *const *batch[] = {values};
    PGresult *out[1];
    if (app_batch(req, res, stmts, batch, 1, out) < 0)
        return -1;
    return send_project(req, res, out[0], status);
}

int handle_project_create(request_t *req, response_t *res)
{
    declaration_t d;
    if (read_declaration(req, res, &d) < 0)
        return -1;
    const char *create[] = {d.unit, d.year, d.title, d.category, d.classified, d.soe,
                            d.public_institution, d.cross_department, d.vertical, d.key,
                            d.urgent, d.urgent_reason, d.budget_fen, d.funding, d.mode,
                            d.exemption, d.start, d.end, d.contact_name, d.contact_phone,
                            d.contact_email, d.summary, d.res_code, d.res_name, d.res_source,
                            d.res_share, d.res_frequency, d.res_aggregated, req->remote_addr,
                            req->request_id};
    return write_project(req, res, &stmt_create, create, 201);
}

int handle_project_get(request_t *req, response_t *res)
{
    const char *code = req->params[0];
    if (!code_valid(code)) {
        problem_simple(req->arena, res, 404, "no such project", NULL);
        return -1;
    }
    const char *by_code[] = {code};
    const db_stmt_t *stmts[] = {&stmt_get};
    const char *const *values[] = {by_code};
    PGresult *out[1];
    if (app_batch(req, res, stmts, values, 1, out) < 0)
        return -1;
    return send_project(req, res, out[0], 200);
}

int handle_project_update(request_t *req, response_t *res)
{
    const char *code = req->params[0];
    if (!code_valid(code)) {
        problem_simple(req->arena, res, 404, "no such project", NULL);
        return -1;
    }
    const char *version;
    if (if_match_version(req, res, code, &version) < 0)
        return -1;
    declaration_t d;
    if (read_declaration(req, res, &d) < 0)
        return -1;
    const char *update[] = {code, version, d.title, d.year, d.category, d.classified, d.soe,
                            d.public_institution, d.cross_department, d.vertical, d.key,
                            d.urgent, d.urgent_reason, d.budget_fen, d.funding, d.mode,
                            d.exemption, d.start, d.end, d.contact_name, d.contact_phone,
                            d.contact_email, d.summary, d.unit, d.res_code, d.res_name,
                            d.res_source, d.res_share, d.res_frequency, d.res_aggregated,
                            req->remote_addr, req->request_id};
    return write_project(req, res, &stmt_update, update, 200);
}

/* A query parameter that must be a non-negative integer within max. */
static int uint_param(request_t *req, const char *name, long def, long max, long *out)
{
    const char *v = request_query(req, name);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 0 || n > max)
        return -1;
    *out = n;
    return 0;
}

/* The code's half of the scope (row-level security is the other): a caller
 * whose roles all see one unit (submitter, cdo) or one region (county_admin)
 * gets that filter added, so the list walks only their part of the indexes.
 * A filter the caller set to something else still meets the policy, which
 * then returns nothing. Other roles reach beyond one unit or region (the
 * city, assignments, sign-offs) and are left to the policy. */
static void narrow_to_scope(request_t *req, const char **values)
{
    const user_t *u = req->user;
    unsigned unit_roles = ROLE_SUBMITTER | ROLE_CDO;
    if ((u->roles & ~unit_roles) == 0 && values[1] == NULL)
        values[1] = u->unit;
    else if (u->roles == ROLE_COUNTY_ADMIN && values[2] == NULL)
        values[2] = u->region;
}

/* The page size by its usual names (limit, size, pageSize, per_page: the
 * first given), and the start as an offset or a 1-based page of that size. */
static int paging(request_t *req, long *limit, long *offset)
{
    static const char *const size_names[] = {"limit", "size", "pageSize", "per_page"};
    const char *size_name = size_names[0];
    for (size_t i = 0; i < sizeof size_names / sizeof *size_names; i++)
        if (request_query(req, size_names[i]) != NULL) {
            size_name = size_names[i];
            break;
        }
    long page;
    if (uint_param(req, size_name, 50, 500, limit) < 0 || *limit == 0 ||
        uint_param(req, "offset", 0, 10000000, offset) < 0 ||
        uint_param(req, "page", 0, 10000000, &page) < 0)
        return -1;
    if (request_query(req, "page") != NULL) {
        if (page == 0 || request_query(req, "offset") != NULL || (page - 1) * *limit > 10000000)
            return -1;
        *offset = (page - 1) * *limit;
    }
    return 0;
}

int handle_project_list(request_t *req, response_t *res)
{
    long limit, offset;
    if (paging(req, &limit, &offset) < 0) {
        problem_simple(req->arena, res, 400,
                       "limit (or size) must be 1..500; offset a count, or page from 1", NULL);
        return -1;
    }
    const char *text = request_query(req, "text");
    if (text == NULL)
        text = request_query(req, "q");
    const char *values[] = {request_query(req, "stage"), request_query(req, "unit"),
                            request_query(req, "region"), request_query(req, "year"),
                            request_query(req, "category"), text,
                            arena_printf(req->arena, "%ld", limit),
                            arena_printf(req->arena, "%ld", offset)};
    narrow_to_scope(req, values);
    const char *count_values[] = {values[0], values[1], values[2], values[3], values[4], values[5],
                                  arena_printf(req->arena, "%d", PROJECT_COUNT_CAP + 1)};
    const db_stmt_t *stmts[] = {&stmt_custom_plans, &stmt_list, &stmt_count};
    const char *const *batch[] = {NULL, values, count_values};
    PGresult *out[3];
    if (app_batch(req, res, stmts, batch, 3, out) < 0)
        return -1;
    PGresult *rs = out[1];
    int n = PQntuples(rs);
    long total = strtol(PQgetvalue(out[2], 0, 0), NULL, 10);
    xml_out_t *x = xml_out_begin(req->arena, "projects", ITPM_NS);
    if (total > PROJECT_COUNT_CAP) {
        xml_out_attr_int(x, "total", PROJECT_COUNT_CAP);
        xml_out_attr(x, "totalAtLeast", "true");
    } else {
        xml_out_attr_int(x, "total", total);
    }
    xml_out_attr_int(x, "offset", offset);
    xml_out_attr_int(x, "limit", limit);
    for (int i = 0; i < n; i++) {
        xml_out_start(x, "project");
        project_write(x, req->arena, rs, i, 0);
        xml_out_end(x);
    }
    return app_send_xml(req, res, x, 200);
}

int handle_project_transition(request_t *req, response_t *res)
{
    const char *code = req->params[0];
    if (!code_valid(code)) {
        problem_simple(req->arena, res, 404, "no such project", NULL);
        return -1;
    }
    if (request_require_type(req, res, xml_types) < 0 || request_read_body(req, res) < 0)
        return -1;
    xmlDocPtr doc = xml_in_parse(req->arena, req->body, req->body_len, "transition", res);
    if (doc == NULL)
        return -1;
    const char *version;
    if (if_match_version(req, res, code, &version) < 0)
        return -1;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    const char *amount = xml_child_text(req->arena, root, "amount");
    const char *amount_fen = NULL;
    if (amount != NULL) {
        long long fen;
        if (money_parse_fen(amount, &fen) < 0) {
            problem_simple(req->arena, res, 422, "amount must be CNY with two decimals", NULL);
            return -1;
        }
        amount_fen = arena_printf(req->arena, "%lld", fen);
    }
    const char *tr[] = {code, xml_attr(req->arena, root, "action"), version,
                        xml_child_text(req->arena, root, "reason"), amount_fen,
                        xml_child_text(req->arena, root, "listYear"), req->remote_addr,
                        req->request_id};
    return write_project(req, res, &stmt_transition, tr, 200);
}

int handle_project_events(request_t *req, response_t *res)
{
    const char *code = req->params[0];
    if (!code_valid(code)) {
        problem_simple(req->arena, res, 404, "no such project", NULL);
        return -1;
    }
    const char *by_code[] = {code};
    const db_stmt_t *stmts[] = {&app_stmt_project_exists, &stmt_events};
    const char *const *values[] = {by_code, by_code};
    PGresult *out[2];
    if (app_batch(req, res, stmts, values, 2, out) < 0)
        return -1;
    if (PQntuples(out[0]) != 1) {
        problem_simple(req->arena, res, 404, "no such project", NULL);
        return -1;
    }
    PGresult *rs = out[1];
    xml_out_t *x = xml_out_begin(req->arena, "events", ITPM_NS);
    xml_out_attr(x, "project", code);
    for (int i = 0; i < PQntuples(rs); i++) {
        xml_out_start(x, "event");
        xml_out_attr(x, "id", cell(rs, i, 0));
        xml_out_attr(x, "at", cell(rs, i, 1));
        xml_out_attr(x, "actor", cell(rs, i, 2));
        xml_out_attr(x, "role", cell(rs, i, 3));
        xml_out_attr(x, "action", cell(rs, i, 4));
        xml_out_attr(x, "from", cell(rs, i, 5));
        xml_out_attr(x, "to", cell(rs, i, 6));
        if (val(rs, i, 7)[0] != '\0')
            xml_out_text_elem(x, "reason", cell(rs, i, 7));
        money_elem(x, req->arena, "amount", cell(rs, i, 8));
        xml_out_text_elem(x, "listYear", cell(rs, i, 9));
        xml_out_end(x);
    }
    return app_send_xml(req, res, x, 200);
}
