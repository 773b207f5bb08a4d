/* /api/v1/config/{windows,thresholds,experts}: the per-region business
 * rules and the expert pool, read by everyone who administers and changed by
 * an admin, each change audited. A PUT upserts every entry it lists in one
 * transaction. */
#include "http/app.h"
#include "domain/declaration.h"
#include "api/handlers.h"
#include "domain/money.h"
#include "http/problem.h"
#include "xml/xml_in.h"
#include "xml/xml_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The lists a region's thresholds hold: materials by action, sign-off
 * departments by purpose, each with its items' element and attributes. */
typedef struct {
    const char *tbl;      /* element of one list, its name in rules_own and rules_lists */
    const char *key;      /* its attribute naming the action or purpose */
    const char *item;     /* element of one item */
    const char *item_key; /* the item's attribute */
    const char *flag;     /* the item's boolean attribute, or NULL */
} rule_list_t;

static const rule_list_t rule_lists[] = {
    {"materials", "action", "material", "kind", "classifiedOnly"},
    {"signoffs", "purpose", "signoff", "unit", NULL},
};

/* Entries one PUT may hold: all of them are applied in one transaction. */
#define CONFIG_MAX_ENTRIES DB_MAX_BATCH

static const db_stmt_t stmt_windows = {
    "config_windows", "SELECT region, year, opens, closes FROM rules_windows ORDER BY region, year",
    0, 1};
static const db_stmt_t stmt_thresholds = {
    "config_thresholds",
    "SELECT region, expert_amount_fen, expert_count, joint_amount_fen, joint_expert_count,"
    " expert_min_mean, trial_days FROM rules_thresholds ORDER BY region",
    0, 1};
/* The four lists of every region above, in its order: a row per item,
 * name NULL for an empty list. */
static const db_stmt_t stmt_lists = {
    "config_lists",
    "SELECT region, tbl, key, inherited, name, flag FROM rules_lists ORDER BY region, ord, name", 0,
    1};
static const db_stmt_t stmt_experts = {
    "config_experts",
    "SELECT user_id, name, unit, active, array_to_string(fields, E'\\x1f'), cleared"
    " FROM expert_pool ORDER BY user_id",
    0, 1};
static const db_stmt_t stmt_window_put = {
    "config_window_put", "SELECT config_window_put($1, $2::int, $3::date, $4::date, $5, $6)", 6,
    0};
static const db_stmt_t stmt_threshold_put = {
    "config_threshold_put",
    "SELECT config_threshold_put($1, $2::bigint, $3::int, $4::bigint, $5::int, $6::int, $7::int,"
    " $8::text[], $9::text[], $10, $11)",
    11, 0};
static const db_stmt_t stmt_expert_put = {
    "config_expert_put",
    "SELECT config_expert_put($1, $2, $3, $4::text[], $5::boolean, $6::boolean, $7, $8)", 8, 0};

static const char *const xml_types[] = {"application/xml", "text/xml", NULL};

static PGresult *read_table(request_t *req, response_t *res, const db_stmt_t *stmt)
{
    db_status_t status;
    PGresult *rs = db_query(req->app->db, req->arena, stmt, NULL, &status);
    if (rs == NULL)
        app_db_problem(req, res, status);
    return rs;
}

static char *money_of(arena_t *a, const char *fen)
{
    char buf[32];
    money_format(strtoll(fen, NULL, 10), buf, sizeof buf);
    return arena_strdup(a, buf);
}

int handle_config_windows_get(request_t *req, response_t *res)
{
    PGresult *rs = read_table(req, res, &stmt_windows);
    if (rs == NULL)
        return -1;
    xml_out_t *x = xml_out_begin(req->arena, "windows", ITPM_NS);
    for (int i = 0; i < PQntuples(rs); i++) {
        xml_out_start(x, "window");
        xml_out_attr(x, "region", PQgetvalue(rs, i, 0));
        xml_out_attr(x, "year", PQgetvalue(rs, i, 1));
        xml_out_attr(x, "opens", PQgetvalue(rs, i, 2));
        xml_out_attr(x, "closes", PQgetvalue(rs, i, 3));
        xml_out_end(x);
    }
    return app_send_xml(req, res, x, 200);
}

static const rule_list_t *rule_list_named(const char *tbl)
{
    for (size_t i = 0; i < sizeof rule_lists / sizeof rule_lists[0]; i++)
        if (strcmp(rule_lists[i].tbl, tbl) == 0)
            return &rule_lists[i];
    return NULL;
}

/* Writes the lists of region from rows *row on of lists (stmt_lists), each
 * list's rows together; leaves *row at the next region's first row. */
static void write_lists(xml_out_t *x, const PGresult *lists, int *row, const char *region)
{
    int n = PQntuples(lists);
    /* The two statements read apart: a region added between them has lists
     * but no thresholds here. */
    while (*row < n && strcmp(PQgetvalue(lists, *row, 0), region) < 0)
        (*row)++;
    while (*row < n && strcmp(PQgetvalue(lists, *row, 0), region) == 0) {
        const char *tbl = PQgetvalue(lists, *row, 1);
        const char *key = PQgetvalue(lists, *row, 2);
        const rule_list_t *l = rule_list_named(tbl);
        if (l == NULL) {
            (*row)++;
            continue;
        }
        xml_out_start(x, l->tbl);
        xml_out_attr(x, l->key, key);
        if (PQgetvalue(lists, *row, 3)[0] == 't')
            xml_out_attr(x, "inherited", "true");
        for (; *row < n && strcmp(PQgetvalue(lists, *row, 0), region) == 0 &&
               strcmp(PQgetvalue(lists, *row, 1), tbl) == 0 &&
               strcmp(PQgetvalue(lists, *row, 2), key) == 0;
             (*row)++) {
            if (PQgetisnull(lists, *row, 4))
                continue;
            xml_out_start(x, l->item);
            xml_out_attr(x, l->item_key, PQgetvalue(lists, *row, 4));
            if (l->flag != NULL)
                xml_out_attr(x, l->flag, PQgetvalue(lists, *row, 5)[0] == 't' ? "true" : "false");
            xml_out_end(x);
        }
        xml_out_end(x);
    }
}

int handle_config_thresholds_get(request_t *req, response_t *res)
{
    const db_stmt_t *stmts[] = {&stmt_thresholds, &stmt_lists};
    const char *const *values[] = {NULL, NULL};
    PGresult *out[2];
    if (app_batch(req, res, stmts, values, 2, out) < 0)
        return -1;
    const PGresult *rs = out[0];
    int row = 0;
    xml_out_t *x = xml_out_begin(req->arena, "thresholds", ITPM_NS);
    for (int i = 0; i < PQntuples(rs); i++) {
        xml_out_start(x, "threshold");
        xml_out_attr(x, "region", PQgetvalue(rs, i, 0));
        xml_out_attr(x, "expertAmount", money_of(req->arena, PQgetvalue(rs, i, 1)));
        xml_out_attr(x, "expertCount", PQgetvalue(rs, i, 2));
        xml_out_attr(x, "jointAmount", money_of(req->arena, PQgetvalue(rs, i, 3)));
        xml_out_attr(x, "jointExpertCount", PQgetvalue(rs, i, 4));
        xml_out_attr(x, "expertMinMean", PQgetvalue(rs, i, 5));
        xml_out_attr(x, "trialDays", PQgetvalue(rs, i, 6));
        write_lists(x, out[1], &row, PQgetvalue(rs, i, 0));
        xml_out_end(x);
    }
    return app_send_xml(req, res, x, 200);
}

int handle_config_experts_get(request_t *req, response_t *res)
{
    PGresult *rs = read_table(req, res, &stmt_experts);
    if (rs == NULL)
        return -1;
    xml_out_t *x = xml_out_begin(req->arena, "expertPool", ITPM_NS);
    for (int i = 0; i < PQntuples(rs); i++) {
        xml_out_start(x, "expert");
        xml_out_attr(x, "user", PQgetvalue(rs, i, 0));
        xml_out_attr(x, "name", PQgetvalue(rs, i, 1));
        xml_out_attr(x, "unit", PQgetvalue(rs, i, 2));
        xml_out_attr(x, "active", PQgetvalue(rs, i, 3)[0] == 't' ? "true" : "false");
        xml_out_attr(x, "cleared", PQgetvalue(rs, i, 5)[0] == 't' ? "true" : "false");
        /* The fields joined by U+001F, which no XML text can hold (a
         * field may hold commas and quotes, a text[] literal quotes them). */
        const char *f = PQgetvalue(rs, i, 4);
        while (*f != '\0') {
            const char *end = strchr(f, '\x1f');
            size_t n = end != NULL ? (size_t)(end - f) : strlen(f);
            xml_out_text_elem(x, "field", arena_strndup(req->arena, f, n));
            f += n + (end != NULL);
        }
        xml_out_end(x);
    }
    return app_send_xml(req, res, x, 200);
}

/* Parses the PUT body with root `root`; the entries are its element children. */
static xmlNodePtr read_put(request_t *req, response_t *res, const char *root, size_t *n)
{
    if (request_require_type(req, res, xml_types) < 0 || request_read_body(req, res) < 0)
        return NULL;
    xmlDocPtr doc = xml_in_parse(req->arena, req->body, req->body_len, root, res);
    if (doc == NULL)
        return NULL;
    xmlNodePtr top = xmlDocGetRootElement(doc);
    *n = 0;
    for (xmlNodePtr e = top->children; e != NULL; e = e->next)
        if (e->type == XML_ELEMENT_NODE)
            (*n)++;
    if (*n > CONFIG_MAX_ENTRIES) {
        problem_simple(req->arena, res, 413,
                       arena_printf(req->arena, "at most %d entries per request",
                                    CONFIG_MAX_ENTRIES),
                       NULL);
        return NULL;
    }
    return top;
}

/* Applies one statement per entry in a single scoped transaction: all or
 * nothing, the first refusal answered. */
static int apply_entries(request_t *req, response_t *res, const db_stmt_t *stmt,
                         const char *const **values, size_t n)
{
    if (n == 0)
        return 0;
    const db_stmt_t *stmts[DB_MAX_BATCH];
    PGresult *out[DB_MAX_BATCH];
    for (size_t i = 0; i < n; i++)
        stmts[i] = stmt;
    return app_batch(req, res, stmts, values, (int)n, out);
}

static int bad_entry(request_t *req, response_t *res, xmlNodePtr e, const char *message)
{
    problem_error_t *err = arena_calloc(req->arena, sizeof *err);
    err->line = (int)xmlGetLineNo(e);
    err->message = message;
    problem_t p = {.status = 422, .detail = "an entry breaks a rule", .errors = err, .nerrors = 1};
    problem_respond(req->arena, res, &p);
    return -1;
}

int handle_config_windows_put(request_t *req, response_t *res)
{
    size_t n;
    xmlNodePtr top = read_put(req, res, "windows", &n);
    if (top == NULL)
        return -1;
    const char *const **values = arena_alloc(req->arena, (n + 1) * sizeof *values);
    size_t i = 0;
    for (xmlNodePtr e = top->children; e != NULL; e = e->next) {
        if (e->type != XML_ELEMENT_NODE)
            continue;
        const char **v = arena_alloc(req->arena, 6 * sizeof *v);
        v[0] = xml_attr(req->arena, e, "region");
        v[1] = xml_attr(req->arena, e, "year");
        v[2] = xml_attr_token(req->arena, e, "opens");
        v[3] = xml_attr_token(req->arena, e, "closes");
        v[4] = req->remote_addr;
        v[5] = req->request_id;
        if (strcmp(v[3], v[2]) < 0)
            return bad_entry(req, res, e, "a window closes before it opens");
        values[i++] = v;
    }
    if (apply_entries(req, res, &stmt_window_put, values, n) < 0)
        return -1;
    return handle_config_windows_get(req, res);
}

/* The lists a <threshold> gives into *lists and *items (text[] literals, as
 * rules_lists_put() reads them): "tbl:key:own" or "tbl:key:inherit" per
 * list, "tbl:key:name:t|f" per item. */
static void read_lists(request_t *req, xmlNodePtr threshold, const char **lists, const char **items)
{
    size_t nlists = 0, nitems = 0;
    for (xmlNodePtr g = threshold->children; g != NULL; g = g->next) {
        if (g->type != XML_ELEMENT_NODE)
            continue;
        nlists++;
        for (xmlNodePtr it = g->children; it != NULL; it = it->next)
            nitems += it->type == XML_ELEMENT_NODE;
    }
    const char **ls = arena_alloc(req->arena, (nlists + 1) * sizeof *ls);
    const char **is = arena_alloc(req->arena, (nitems + 1) * sizeof *is);
    nlists = nitems = 0;
    for (xmlNodePtr g = threshold->children; g != NULL; g = g->next) {
        const rule_list_t *l =
            g->type == XML_ELEMENT_NODE ? rule_list_named((const char *)g->name) : NULL;
        if (l == NULL)
            continue;
        const char *key = xml_attr(req->arena, g, l->key);
        int inherit = xml_bool(xml_attr(req->arena, g, "inherited"), 0);
        ls[nlists++] =
            arena_printf(req->arena, "%s:%s:%s", l->tbl, key, inherit ? "inherit" : "own");
        /* An inherited list's items are the city's, as GET shows them:
         * sending the document back keeps the list inherited. */
        for (xmlNodePtr it = g->children; !inherit && it != NULL; it = it->next) {
            if (it->type != XML_ELEMENT_NODE)
                continue;
            int flag = l->flag != NULL && xml_bool(xml_attr(req->arena, it, l->flag), 0);
            is[nitems++] = arena_printf(req->arena, "%s:%s:%s:%s", l->tbl, key,
                                        xml_attr(req->arena, it, l->item_key), flag ? "t" : "f");
        }
    }
    *lists = pg_text_array(req->arena, ls, nlists);
    *items = pg_text_array(req->arena, is, nitems);
}

int handle_config_thresholds_put(request_t *req, response_t *res)
{
    size_t n;
    xmlNodePtr top = read_put(req, res, "thresholds", &n);
    if (top == NULL)
        return -1;
    const char *const **values = arena_alloc(req->arena, (n + 1) * sizeof *values);
    size_t i = 0;
    for (xmlNodePtr e = top->children; e != NULL; e = e->next) {
        if (e->type != XML_ELEMENT_NODE)
            continue;
        long long expert_fen, joint_fen;
        if (money_parse_fen(xml_attr(req->arena, e, "expertAmount"), &expert_fen) < 0 ||
            money_parse_fen(xml_attr(req->arena, e, "jointAmount"), &joint_fen) < 0)
            return bad_entry(req, res, e, "amounts are CNY with two decimals");
        if (joint_fen < expert_fen)
            return bad_entry(req, res, e, "jointAmount is below expertAmount");
        const char **v = arena_alloc(req->arena, 11 * sizeof *v);
        v[0] = xml_attr(req->arena, e, "region");
        v[1] = arena_printf(req->arena, "%lld", expert_fen);
        v[2] = xml_attr(req->arena, e, "expertCount");
        v[3] = arena_printf(req->arena, "%lld", joint_fen);
        v[4] = xml_attr(req->arena, e, "jointExpertCount");
        v[5] = xml_attr(req->arena, e, "expertMinMean");
        v[6] = xml_attr(req->arena, e, "trialDays");
        read_lists(req, e, &v[7], &v[8]);
        v[9] = req->remote_addr;
        v[10] = req->request_id;
        if (atoi(v[2]) < 1 || atoi(v[4]) < 1)
            return bad_entry(req, res, e, "expert counts are at least 1");
        if (atoi(v[4]) < atoi(v[2]))
            return bad_entry(req, res, e, "jointExpertCount is below expertCount");
        values[i++] = v;
    }
    if (apply_entries(req, res, &stmt_threshold_put, values, n) < 0)
        return -1;
    return handle_config_thresholds_get(req, res);
}

int handle_config_experts_put(request_t *req, response_t *res)
{
    size_t n;
    xmlNodePtr top = read_put(req, res, "expertPool", &n);
    if (top == NULL)
        return -1;
    const char *const **values = arena_alloc(req->arena, (n + 1) * sizeof *values);
    size_t i = 0;
    for (xmlNodePtr e = top->children; e != NULL; e = e->next) {
        if (e->type != XML_ELEMENT_NODE)
            continue;
        const char *fields[20];
        size_t nf = 0;
        for (xmlNodePtr f = e->children; f != NULL && nf < 20; f = f->next)
            if (f->type == XML_ELEMENT_NODE)
                fields[nf++] = xml_text(req->arena, f);
        const char **v = arena_alloc(req->arena, 8 * sizeof *v);
        const char *active = xml_attr(req->arena, e, "active");
        const char *cleared = xml_attr(req->arena, e, "cleared");
        v[0] = xml_attr(req->arena, e, "user");
        v[1] = xml_attr(req->arena, e, "name");
        v[2] = xml_attr(req->arena, e, "unit");
        v[3] = pg_text_array(req->arena, fields, nf);
        v[4] = xml_bool(active, 1) ? "true" : "false";
        v[5] = xml_bool(cleared, 0) ? "true" : "false";
        v[6] = req->remote_addr;
        v[7] = req->request_id;
        values[i++] = v;
    }
    if (apply_entries(req, res, &stmt_expert_put, values, n) < 0)
        return -1;
    return handle_config_experts_get(req, res);
}
