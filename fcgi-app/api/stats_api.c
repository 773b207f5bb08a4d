/* /api/v1/stats/overview: counts and money by stage, region and unit, how
 * long projects wait at each stage, and what is overdue, in the caller's
 * scope. */
#include "http/app.h"
#include "api/handlers.h"
#include "domain/money.h"
#include "http/problem.h"
#include "xml/xml_in.h"
#include "xml/xml_out.h"

#include <stdlib.h>

static const db_stmt_t stmt_by_stage = {
    "stats_stage",
    "SELECT stage, projects, coalesce(requested_fen, 0), coalesce(approved_fen, 0),"
    " coalesce(avg_days_waiting, 0), coalesce(max_days_waiting, 0),"
    " coalesce(requested_decided_fen, 0) FROM project_stats_stage ORDER BY stage",
    0, 1};
static const db_stmt_t stmt_by_region = {
    "stats_region",
    "SELECT region, count(*), coalesce(sum(budget_requested_fen), 0),"
    " coalesce(sum(budget_approved_fen), 0) FROM projects GROUP BY region ORDER BY region",
    0, 1};
static const db_stmt_t stmt_by_unit = {
    "stats_unit",
    "SELECT unit, count(*), coalesce(sum(budget_requested_fen), 0),"
    " coalesce(sum(budget_approved_fen), 0) FROM projects GROUP BY unit ORDER BY unit",
    0, 1};

/* Projects at filing past their region's days after acceptance, the longest
 * overdue first, with the count of all of them. */
static const db_stmt_t stmt_overdue = {
    "stats_overdue",
    "SELECT 'filing', p.code, d.due, current_date - d.due, count(*) OVER ()"
    " FROM projects p CROSS JOIN LATERAL"
    " (SELECT (p.stage_since + make_interval(days => t.filing_overdue_days))::date AS due"
    "    FROM rules_thresholds t WHERE t.region = rules_region(p.region, 'rules_thresholds')) d"
    " WHERE p.stage = 'filing' AND d.due < current_date ORDER BY d.due, p.code LIMIT 50",
    0, 1};

static const char *money(arena_t *a, const char *fen)
{
    char buf[32];
    money_format(strtoll(fen, NULL, 10), buf, sizeof buf);
    return arena_strdup(a, buf);
}

static void group(xml_out_t *x, arena_t *a, const char *list, const char *item,
                  const PGresult *rs)
{
    xml_out_start(x, list);
    for (int i = 0; i < PQntuples(rs); i++) {
        xml_out_start(x, item);
        xml_out_attr(x, "code", PQgetvalue(rs, i, 0));
        xml_out_attr(x, "projects", PQgetvalue(rs, i, 1));
        xml_out_attr(x, "requested", money(a, PQgetvalue(rs, i, 2)));
        xml_out_attr(x, "approved", money(a, PQgetvalue(rs, i, 3)));
        xml_out_end(x);
    }
    xml_out_end(x);
}

int handle_stats_overview(request_t *req, response_t *res)
{
    const db_stmt_t *stmts[] = {&stmt_by_stage, &stmt_by_region, &stmt_by_unit, &stmt_overdue};
    const char *const *values[] = {NULL, NULL, NULL, NULL};
    PGresult *out[4];
    if (app_batch(req, res, stmts, values, 4, out) < 0)
        return -1;
    long long projects = 0, requested = 0, approved = 0, decided = 0;
    for (int i = 0; i < PQntuples(out[0]); i++) {
        projects += strtoll(PQgetvalue(out[0], i, 1), NULL, 10);
        requested += strtoll(PQgetvalue(out[0], i, 2), NULL, 10);
        approved += strtoll(PQgetvalue(out[0], i, 3), NULL, 10);
        decided += strtoll(PQgetvalue(out[0], i, 6), NULL, 10);
    }
    xml_out_t *x = xml_out_begin(req->arena, "overview", ITPM_NS);
    xml_out_start(x, "total");
    xml_out_attr_int(x, "projects", projects);
    char buf[32];
    money_format(requested, buf, sizeof buf);
    xml_out_attr(x, "requested", buf);
    money_format(approved, buf, sizeof buf);
    xml_out_attr(x, "approved", buf);
    if (decided > 0) {
        /* 1 - approved/requested over the projects whose budget was decided. */
        long long rate = ((decided - approved) * 10000 + decided / 2) / decided;
        xml_out_attr(x, "reductionRate",
                     arena_printf(req->arena, "%lld.%04lld", rate / 10000, rate % 10000));
    }
    xml_out_end(x);
    xml_out_start(x, "stages");
    for (int i = 0; i < PQntuples(out[0]); i++) {
        xml_out_start(x, "stage");
        xml_out_attr(x, "name", PQgetvalue(out[0], i, 0));
        xml_out_attr(x, "projects", PQgetvalue(out[0], i, 1));
        xml_out_attr(x, "requested", money(req->arena, PQgetvalue(out[0], i, 2)));
        xml_out_attr(x, "approved", money(req->arena, PQgetvalue(out[0], i, 3)));
        xml_out_attr(x, "avgDaysWaiting", PQgetvalue(out[0], i, 4));
        xml_out_attr(x, "maxDaysWaiting", PQgetvalue(out[0], i, 5));
        xml_out_end(x);
    }
    xml_out_end(x);
    group(x, req->arena, "regions", "region", out[1]);
    group(x, req->arena, "units", "unit", out[2]);
    xml_out_start(x, "overdue");
    xml_out_attr(x, "total", PQntuples(out[3]) > 0 ? PQgetvalue(out[3], 0, 4) : "0");
    for (int i = 0; i < PQntuples(out[3]); i++) {
        xml_out_start(x, "item");
        xml_out_attr(x, "kind", PQgetvalue(out[3], i, 0));
        xml_out_attr(x, "project", PQgetvalue(out[3], i, 1));
        xml_out_attr(x, "due", PQgetvalue(out[3], i, 2));
        xml_out_attr(x, "daysOverdue", PQgetvalue(out[3], i, 3));
        xml_out_end(x);
    }
    xml_out_end(x);
    return app_send_xml(req, res, x, 200);
}
