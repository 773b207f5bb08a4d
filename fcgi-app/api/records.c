/* Sub-records of a project: attachments (stored in PostgreSQL with their
 * SHA-256), expert assignments and scores, joint sign-offs. They are rows of
 * their own and need no If-Match; scope is the project's. */
#include "http/app.h"
#include "domain/declaration.h"
#include "domain/upload.h"
#include "core/digest.h"
#include "api/handlers.h"
#include "http/problem.h"
#include "xml/xml_in.h"
#include "xml/xml_out.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const db_stmt_t stmt_attach = {
    "attachment_add",
    "SELECT attachment_add($1, $2, $3, $4, $5::bigint, $6, $7::bytea, $8, $9)", 9, 0};

static const db_stmt_t stmt_attachment_meta = {
    "attachment_meta",
    "SELECT a.id, a.kind, a.filename, a.content_type, a.size, a.sha256, a.uploaded_by,"
    " to_char(a.uploaded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    " FROM attachments a JOIN projects p ON p.id = a.project_id"
    " WHERE p.code = $1 AND ($2::bigint IS NULL OR a.id = $2::bigint) ORDER BY a.id",
    2, 1};

static const db_stmt_t stmt_attachment_content = {
    "attachment_content",
    "SELECT a.content_type, a.filename, a.sha256, a.content"
    " FROM attachments a JOIN projects p ON p.id = a.project_id"
    " WHERE p.code = $1 AND a.id = $2::bigint",
    2, 1};

static const db_stmt_t stmt_experts_assign = {
    "experts_assign", "SELECT experts_assign($1, $2::text[], $3, $4)", 4, 0};

static const db_stmt_t stmt_experts_list = {
    "experts_list",
    "SELECT e.id, e.expert_id, e.unit, e.score, e.opinion,"
    " project_required_experts(p.region, p.budget_requested_fen)"
    " FROM projects p LEFT JOIN expert_assignments e ON e.project_id = p.id"
    " WHERE p.code = $1 ORDER BY e.id",
    1, 1};

static const db_stmt_t stmt_expert_score = {
    "expert_score", "SELECT expert_score($1, $2, $3::int, $4, $5, $6)", 6, 0};

static const db_stmt_t stmt_signoff = {
    "signoff_add", "SELECT signoff_add($1, $2::boolean, $3, $4, $5)", 5, 0};

static const char *const xml_types[] = {"application/xml", "text/xml", NULL};

static const char *const attachment_kinds[] = {
    "declaration_form",  "construction_plan", "budget_detail",       "security_plan",
    "secrecy_review",    "implementation_plan", "acceptance_report", "test_report",
    "security_assessment", "filing_document", "other",              NULL};

/* Runs one write and answers 404 when the project is out of sight. */
static int run(request_t *req, response_t *res, const db_stmt_t *stmt, const char *const *values,
               PGresult **out)
{
    db_actor_t actor;
    app_actor(req, &actor);
    db_status_t status;
    *out = db_query_as(req->app->db, req->arena, &actor, stmt, values, &status);
    if (*out == NULL) {
        app_db_problem(req, res, status);
        return -1;
    }
    return 0;
}

/* Attachments ------------------------------------------------------------- */

static int kind_valid(const char *kind)
{
    for (const char *const *k = attachment_kinds; *k != NULL; k++)
        if (strcmp(*k, kind) == 0)
            return 1;
    return 0;
}

static char *hex_of(arena_t *a, const unsigned char *bytes, size_t n, const char *prefix)
{
    static const char hex[] = "0123456789abcdef";
    size_t p = strlen(prefix);
    char *out = arena_alloc(a, p + 2 * n + 1);
    memcpy(out, prefix, p);
    for (size_t i = 0; i < n; i++) {
        out[p + 2 * i] = hex[bytes[i] >> 4];
        out[p + 2 * i + 1] = hex[bytes[i] & 15];
    }
    out[p + 2 * n] = '\0';
    return out;
}

static void attachment_write(xml_out_t *x, const PGresult *rs, int i)
{
    xml_out_attr(x, "id", PQgetvalue(rs, i, 0));
    xml_out_attr(x, "kind", PQgetvalue(rs, i, 1));
    xml_out_attr(x, "filename", PQgetvalue(rs, i, 2));
    xml_out_attr(x, "contentType", PQgetvalue(rs, i, 3));
    xml_out_attr(x, "size", PQgetvalue(rs, i, 4));
    xml_out_attr(x, "sha256", PQgetvalue(rs, i, 5));
    xml_out_attr(x, "uploadedBy", PQgetvalue(rs, i, 6));
    xml_out_attr(x, "uploaded", PQgetvalue(rs, i, 7));
}

int handle_attachment_upload(request_t *req, response_t *res)
{
    const char *code = req->params[0];
    const char *kind = request_query(req, "kind");
    const char *filename = request_query(req, "filename");
    if (filename == NULL)
        filename = request_disposition_filename(req);
    if (kind == NULL || !kind_valid(kind)) {
        problem_simple(req->arena, res, 422, "kind must be one of the attachment kinds", NULL);
        return -1;
    }
    if (filename == NULL || !upload_filename_valid(filename)) {
        problem_simple(req->arena, res, 422,
                       "filename (in the query or Content-Disposition) is required: UTF-8, "
                       "printable, not blank, without path or formatting characters, at most "
                       "255 bytes",
                       NULL);
        return -1;
    }
    const char *type = req->content_type;
    if (type == NULL || strlen(type) > 127 || !upload_media_type_valid(type)) {
        problem_simple(req->arena, res, 415,
                       "send the file with its content type (type/subtype, RFC 9110)", NULL);
        return -1;
    }
    if (request_read_body(req, res) < 0)
        return -1;
    if (req->body_len == 0) {
        problem_simple(req->arena, res, 422, "the file is empty", NULL);
        return -1;
    }
    unsigned char md[SHA256_BYTES];
    if (digest_sha256(req->body, req->body_len, md) < 0) {
        problem_simple(req->arena, res, 500, "the file could not be hashed", NULL);
        return -1;
    }
    const char *sha = hex_of(req->arena, md, 32, "");
    const char *values[] = {code,
                            kind,
                            filename,
                            type,
                            arena_printf(req->arena, "%zu", req->body_len),
                            sha,
                            hex_of(req->arena, (const unsigned char *)req->body, req->body_len,
                                   "\\x"),
                            req->remote_addr,
                            req->request_id};
    PGresult *rs;
    if (run(req, res, &stmt_attach, values, &rs) < 0)
        return -1;
    const char *id = PQgetvalue(rs, 0, 0);
    const char *meta_values[] = {code, id};
    if (run(req, res, &stmt_attachment_meta, meta_values, &rs) < 0 || PQntuples(rs) != 1) {
        if (res->status < 400)
            problem_simple(req->arena, res, 500, "the attachment could not be read back", NULL);
        return -1;
    }
    xml_out_t *x = xml_out_begin(req->arena, "attachment", ITPM_NS);
    attachment_write(x, rs, 0);
    response_header(res, "Location",
                    arena_printf(req->arena, "/api/v1/projects/%s/attachments/%s", code, id));
    return app_send_xml(req, res, x, 201);
}

int handle_attachment_list(request_t *req, response_t *res)
{
    const char *code = req->params[0];
    const char *by_code[] = {code};
    const char *meta[] = {code, NULL};
    const db_stmt_t *stmts[] = {&app_stmt_project_exists, &stmt_attachment_meta};
    const char *const *values[] = {by_code, meta};
    PGresult *out[2];
    if (app_batch(req, res, stmts, values, 2, out) < 0)
        return -1;
    if (PQntuples(out[0]) != 1) {
        problem_simple(req->arena, res, 404, "no such project", NULL);
        return -1;
    }
    xml_out_t *x = xml_out_begin(req->arena, "attachments", ITPM_NS);
    xml_out_attr(x, "project", code);
    for (int i = 0; i < PQntuples(out[1]); i++) {
        xml_out_start(x, "attachment");
        attachment_write(x, out[1], i);
        xml_out_end(x);
    }
    return app_send_xml(req, res, x, 200);
}

static void unescape_free(void *p)
{
    PQfreemem(p);
}

/* Content-Disposition of a download (RFC 6266): the name as it was given
 * in filename*, UTF-8 and percent-encoded, whenever it is not plain ASCII,
 * with an ASCII stand-in in filename for clients that know only that. */
static const char *disposition(arena_t *a, const char *name)
{
    size_t n = strlen(name);
    int plain = 1;
    for (size_t i = 0; i < n; i++)
        plain = plain && (unsigned char)name[i] < 0x80;
    if (plain)
        return arena_printf(a, "attachment; filename=\"%s\"", name);
    static const char hex[] = "0123456789ABCDEF";
    char *ascii = arena_alloc(a, n + 1);
    char *enc = arena_alloc(a, 3 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        ascii[i] = c < 0x80 ? (char)c : '_';
        /* attr-char of RFC 8187: the rest is percent-encoded. */
        if (isalnum(c) || (c != 0 && strchr("!#$&+-.^_`|~", c) != NULL)) {
            enc[k++] = (char)c;
        } else {
            enc[k++] = '%';
            enc[k++] = hex[c >> 4];
            enc[k++] = hex[c & 15];
        }
    }
    ascii[n] = '\0';
    enc[k] = '\0';
    return arena_printf(a, "attachment; filename=\"%s\"; filename*=UTF-8''%s", ascii, enc);
}

/* The value of a hex digit already checked to be one. */
static unsigned nibble(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

/* The stored SHA-256 (hex) in base64, as Digest and Repr-Digest carry it;
 * NULL if it is not 64 hex digits. */
static const char *sha256_base64(arena_t *a, const char *hex)
{
    unsigned char raw[SHA256_BYTES];
    if (strlen(hex) != 2 * SHA256_BYTES ||
        strspn(hex, "0123456789abcdefABCDEF") != 2 * SHA256_BYTES)
        return NULL;
    for (size_t i = 0; i < SHA256_BYTES; i++)
        raw[i] = (unsigned char)(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
    char *out = arena_alloc(a, 4 * ((SHA256_BYTES + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, raw, SHA256_BYTES);
    return out;
}

int handle_attachment_get(request_t *req, response_t *res)
{
    const char *code = req->params[0];
    const char *id = req->params[1];
    if (strspn(id, "0123456789") != strlen(id) || strlen(id) == 0 || strlen(id) > 18) {
        problem_simple(req->arena, res, 404, "no such attachment", NULL);
        return -1;
    }
    const char *values[] = {code, id};
    PGresult *rs;
    if (run(req, res, &stmt_attachment_content, values, &rs) < 0)
        return -1;
    if (PQntuples(rs) != 1) {
        problem_simple(req->arena, res, 404, "no such attachment", NULL);
        return -1;
    }
    size_t len = 0;
    unsigned char *bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(rs, 0, 3), &len);
    if (bytes == NULL) {
        problem_simple(req->arena, res, 500, "the attachment could not be read", NULL);
        return -1;
    }
    arena_on_reset(req->arena, unescape_free, bytes);
    response_header(res, "Content-Disposition", disposition(req->arena, PQgetvalue(rs, 0, 1)));
    const char *hex = PQgetvalue(rs, 0, 2);
    const char *b64 = sha256_base64(req->arena, hex);
    if (b64 != NULL) {
        response_header(res, "Digest", arena_printf(req->arena, "sha-256=%s", b64));
        response_header(res, "Repr-Digest", arena_printf(req->arena, "sha-256=:%s:", b64));
    }
    response_header(res, "X-Content-SHA256", arena_strdup(req->arena, hex));
    /* An attachment never changes: its hash is its validator. */
    response_header(res, "ETag", arena_printf(req->arena, "\"%s\"", hex));
    response_body(res, 200, arena_strdup(req->arena, PQgetvalue(rs, 0, 0)), (const char *)bytes,
                  len);
    return 0;
}

/* Experts ----------------------------------------------------------------- */

static int send_experts(request_t *req, response_t *res, const char *code, int status)
{
    const char *values[] = {code};
    PGresult *rs;
    if (run(req, res, &stmt_experts_list, values, &rs) < 0)
        return -1;
    if (PQntuples(rs) == 0) {
        problem_simple(req->arena, res, 404, "no such project", NULL);
        return -1;
    }
    xml_out_t *x = xml_out_begin(req->arena, "experts", ITPM_NS);
    xml_out_attr(x, "project", code);
    xml_out_attr(x, "required", PQgetvalue(rs, 0, 5));
    for (int i = 0; i < PQntuples(rs); i++) {
        if (PQgetisnull(rs, i, 0))
            continue;
        xml_out_start(x, "expert");
        /* id: what PUT …/experts/{id} takes, the expert's user id. */
        xml_out_attr(x, "id", PQgetvalue(rs, i, 1));
        xml_out_attr(x, "user", PQgetvalue(rs, i, 1));
        xml_out_attr(x, "unit", PQgetvalue(rs, i, 2));
        if (!PQgetisnull(rs, i, 3))
            xml_out_attr(x, "score", PQgetvalue(rs, i, 3));
        if (PQgetvalue(rs, i, 4)[0] != '\0')
            xml_out_text_elem(x, "opinion", PQgetvalue(rs, i, 4));
        xml_out_end(x);
    }
    return app_send_xml(req, res, x, status);
}

int handle_experts_list(request_t *req, response_t *res)
{
    return send_experts(req, res, req->params[0], 200);
}

int handle_experts_assign(request_t *req, response_t *res)
{
    const char *code = req->params[0];
    const char **named = NULL;
    size_t n = 0;
    if (req->content_length > 0) {
        if (request_require_type(req, res, xml_types) < 0 || request_read_body(req, res) < 0)
            return -1;
        xmlDocPtr doc = xml_in_parse(req->arena, req->body, req->body_len, "experts", res);
        if (doc == NULL)
            return -1;
        xmlNodePtr root = xmlDocGetRootElement(doc);
        named = arena_alloc(req->arena, 51 * sizeof *named);
        for (xmlNodePtr e = root->children; e != NULL && n < 50; e = e->next)
            if (e->type == XML_ELEMENT_NODE)
                named[n++] = xml_attr(req->arena, e, "user");
    }
    const char *values[] = {code, pg_text_array_of(req->arena, named, n), req->remote_addr,
                            req->request_id};
    PGresult *rs;
    if (run(req, res, &stmt_experts_assign, values, &rs) < 0)
        return -1;
    return send_experts(req, res, code, 201);
}

int handle_expert_score(request_t *req, response_t *res)
{
    const char *code = req->params[0];
    const char *expert = req->params[1];
    if (request_require_type(req, res, xml_types) < 0 || request_read_body(req, res) < 0)
        return -1;
    xmlDocPtr doc = xml_in_parse(req->arena, req->body, req->body_len, "score", res);
    if (doc == NULL)
        return -1;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    const char *values[] = {code,
                            expert,
                            xml_attr(req->arena, root, "value"),
                            xml_child_text(req->arena, root, "opinion"),
                            req->remote_addr,
                            req->request_id};
    PGresult *rs;
    if (run(req, res, &stmt_expert_score, values, &rs) < 0)
        return -1;
    return send_experts(req, res, code, 200);
}

/* Sign-offs ----------------------------------------------------------------- */

int handle_signoff(request_t *req, response_t *res)
{
    const char *code = req->params[0];
    if (request_require_type(req, res, xml_types) < 0 || request_read_body(req, res) < 0)
        return -1;
    xmlDocPtr doc = xml_in_parse(req->arena, req->body, req->body_len, "signoff", res);
    if (doc == NULL)
        return -1;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    /* The schema's unit and by are what the answer says; sent, they must be
     * the caller's own, not quietly replaced by them. */
    const char *unit = xml_attr_token(req->arena, root, "unit");
    const char *by = xml_attr_token(req->arena, root, "by");
    if ((unit != NULL && strcmp(unit, req->user->unit) != 0) ||
        (by != NULL && strcmp(by, req->user->id) != 0)) {
        problem_simple(req->arena, res, 403,
                       "a joint reviewer signs for their own department, as themselves", NULL);
        return -1;
    }
    const char *approved = xml_attr(req->arena, root, "approved");
    const char *values[] = {code, xml_bool(approved, 0) ? "true" : "false",
                            xml_child_text(req->arena, root, "opinion"), req->remote_addr,
                            req->request_id};
    PGresult *rs;
    if (run(req, res, &stmt_signoff, values, &rs) < 0)
        return -1;
    xml_out_t *x = xml_out_begin(req->arena, "signoff", ITPM_NS);
    xml_out_attr(x, "approved", values[1]);
    xml_out_attr(x, "unit", req->user->unit);
    xml_out_attr(x, "by", req->user->id);
    xml_out_text_elem(x, "opinion", values[2]);
    return app_send_xml(req, res, x, 201);
}
