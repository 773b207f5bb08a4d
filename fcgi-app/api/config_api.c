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

/* Entries one PUT may hold: all of them are applied in one transaction. */
#define CONFIG_MAX_ENTRIES DB_MAX_BATCH

static const db_stmt_t stmt_windows = {
    "config_windows", "SELECT region, year, opens, closes FROM rules_windows ORDER BY region, year",
    0, 1};
static const db_stmt_t stmt_thresholds = {
    "config_thresholds",
    "SELECT t.region, t.expert_amount_fen, t.expert_count, t.joint_amount_fen,"
    " t.joint_expert_count, t.expert_min_mean, t.trial_days, l.materials, l.signoffs"
    " FROM rules_thresholds t, rules_lists_text(t.region) l ORDER BY t.region",
    0, 1};
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
    " $8::text[], $9::text[], $10::text[], $11::text[], $12, $13)",
    13, 0};

/* The lists a region's thresholds hold: materials by action, sign-off
 * departments by purpose, each with its items' element and attribute. */
typedef struct {
    const char *list;     /* element of one list */
    const char *key;      /* its attribute naming the action or purpose */
    const char *item;     /* element of one item */
    const char *item_key; /* the item's attribute */
} rule_list_t;

static const rule_list_t materials_list = {"materials", "action", "material", "kind"};
static const rule_list_t signoffs_list = {"signoffs", "purpose", "signoff", "unit"};
static const char *const material_actions[] = {"submit", "accept", NULL};
static const char *const signoff_purposes[] = {"joint", "secrecy", NULL};
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

/* Items of one list from "key item[ flag]" words joined by commas (what
 * rules_lists_text() returns; names hold neither spaces nor commas). */
static void write_list(xml_out_t *x, arena_t *a, const rule_list_t *l, const char *key,
                       const char *items)
{
    xml_out_start(x, l->list);
    xml_out_attr(x, l->key, key);
    size_t klen = strlen(key);
    for (const char *p = items; *p != '\0';) {
        size_t n = strcspn(p, ",");
        if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == ' ') {
            const char *name = p + klen + 1;
            size_t nlen = strcspn(name, " ,");
            xml_out_start(x, l->item);
            xml_out_attr(x, l->item_key, arena_strndup(a, name, nlen));
            if (l == &materials_list)
                xml_out_attr(x, "classifiedOnly",
                             strncmp(name + nlen, " true", 5) == 0 ? "true" : "false");
            xml_out_end(x);
        }
        p += n + (p[n] == ',');
    }
    xml_out_end(x);
}

int handle_config_thresholds_get(request_t *req, response_t *res)
{
    PGresult *rs = read_table(req, res, &stmt_thresholds);
    if (rs == NULL)
        return -1;
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
        for (const char *const *k = material_actions; *k != NULL; k++)
            write_list(x, req->arena, &materials_list, *k, PQgetvalue(rs, i, 7));
        for (const char *const *k = signoff_purposes; *k != NULL; k++)
            write_list(x, req->arena, &signoffs_list, *k, PQgetvalue(rs, i, 8));
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
        v[2] = xml_attr(req->arena, e, "opens");
        v[3] = xml_attr(req->arena, e, "closes");
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

/* The lists of type l a <threshold> gives, as text[] literals: their keys
 * (the actions or purposes they replace) and their items as "key:name",
 * materials with ":t" or ":f" for classifiedOnly (what rules_lists_put()
 * reads; the schema holds each key and item to one occurrence). */
static void read_lists(arena_t *a, xmlNodePtr threshold, const rule_list_t *l, const char **keys,
                       const char **items)
{
    size_t nkeys = 0, nitems = 0;
    for (xmlNodePtr g = threshold->children; g != NULL; g = g->next) {
        if (g->type != XML_ELEMENT_NODE || xmlStrcmp(g->name, BAD_CAST l->list) != 0)
            continue;
        nkeys++;
        for (xmlNodePtr it = g->children; it != NULL; it = it->next)
            nitems += it->type == XML_ELEMENT_NODE;
    }
    const char **k = arena_alloc(a, (nkeys + 1) * sizeof *k);
    const char **v = arena_alloc(a, (nitems + 1) * sizeof *v);
    nkeys = nitems = 0;
    for (xmlNodePtr g = threshold->children; g != NULL; g = g->next) {
        if (g->type != XML_ELEMENT_NODE || xmlStrcmp(g->name, BAD_CAST l->list) != 0)
            continue;
        const char *key = xml_attr(a, g, l->key);
        k[nkeys++] = key;
        for (xmlNodePtr it = g->children; it != NULL; it = it->next) {
            if (it->type != XML_ELEMENT_NODE)
                continue;
            const char *name = xml_attr(a, it, l->item_key);
            if (l == &materials_list) {
                const char *c = xml_attr(a, it, "classifiedOnly");
                int only = c != NULL && (strcmp(c, "true") == 0 || strcmp(c, "1") == 0);
                v[nitems++] = arena_printf(a, "%s:%s:%s", key, name, only ? "t" : "f");
            } else {
                v[nitems++] = arena_printf(a, "%s:%s", key, name);
            }
        }
    }
    *keys = pg_text_array(a, k, nkeys);
    *items = pg_text_array(a, v, nitems);
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
        const char **v = arena_alloc(req->arena, 13 * sizeof *v);
        v[0] = xml_attr(req->arena, e, "region");
        v[1] = arena_printf(req->arena, "%lld", expert_fen);
        v[2] = xml_attr(req->arena, e, "expertCount");
        v[3] = arena_printf(req->arena, "%lld", joint_fen);
        v[4] = xml_attr(req->arena, e, "jointExpertCount");
        v[5] = xml_attr(req->arena, e, "expertMinMean");
        v[6] = xml_attr(req->arena, e, "trialDays");
        read_lists(req->arena, e, &materials_list, &v[7], &v[8]);
        read_lists(req->arena, e, &signoffs_list, &v[9], &v[10]);
        v[11] = req->remote_addr;
        v[12] = req->request_id;
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
        v[4] = active == NULL || strcmp(active, "true") == 0 || strcmp(active, "1") == 0 ? "true"
                                                                                          : "false";
        v[5] = cleared != NULL && (strcmp(cleared, "true") == 0 || strcmp(cleared, "1") == 0)
                   ? "true"
                   : "false";
        v[6] = req->remote_addr;
        v[7] = req->request_id;
        values[i++] = v;
    }
    if (apply_entries(req, res, &stmt_expert_put, values, n) < 0)
        return -1;
    return handle_config_experts_get(req, res);
}
