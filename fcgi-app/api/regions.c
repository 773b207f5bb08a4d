/* Reference data: the city's regions and the units in each. */
#include "http/app.h"
#include "api/handlers.h"
#include "http/problem.h"
#include "xml/xml_out.h"

#include <string.h>

#define ITPM_NS "urn:itpm:1"

static const db_stmt_t stmt_regions = {
    "regions_list", "SELECT code, name, kind, parent FROM regions ORDER BY code", 0, 1};

/* One round trip: the region and its units, joined. */
static const db_stmt_t stmt_region = {
    "region_get",
    "SELECT r.code, r.name, r.kind, r.parent, u.code, u.name, u.kind"
    " FROM regions r LEFT JOIN units u ON u.region = r.code"
    " WHERE r.code = $1 ORDER BY u.code",
    1, 1};

static void region_attrs(xml_out_t *x, const PGresult *rs, int row)
{
    xml_out_attr(x, "code", PQgetvalue(rs, row, 0));
    xml_out_attr(x, "name", PQgetvalue(rs, row, 1));
    xml_out_attr(x, "kind", PQgetvalue(rs, row, 2));
    if (!PQgetisnull(rs, row, 3))
        xml_out_attr(x, "parent", PQgetvalue(rs, row, 3));
}

int handle_regions_list(request_t *req, response_t *res)
{
    db_status_t status;
    PGresult *rs = db_query(req->app->db, req->arena, &stmt_regions, NULL, &status);
    if (rs == NULL) {
        app_db_problem(req, res, status);
        return -1;
    }
    xml_out_t *x = xml_out_begin(req->arena, "regions", ITPM_NS);
    for (int i = 0; i < PQntuples(rs); i++) {
        xml_out_start(x, "region");
        region_attrs(x, rs, i);
        xml_out_end(x);
    }
    return app_send_xml(req, res, x, 200);
}

int handle_region_get(request_t *req, response_t *res)
{
    const char *code = req->params[0];
    if (!region_code_valid(code)) {
        problem_simple(req->arena, res, 404, "no such region", NULL);
        return -1;
    }
    db_status_t status;
    const char *const values[] = {code};
    PGresult *rs = db_query(req->app->db, req->arena, &stmt_region, values, &status);
    if (rs == NULL) {
        app_db_problem(req, res, status);
        return -1;
    }
    if (PQntuples(rs) == 0) {
        problem_simple(req->arena, res, 404, "no such region", NULL);
        return -1;
    }
    xml_out_t *x = xml_out_begin(req->arena, "region", ITPM_NS);
    region_attrs(x, rs, 0);
    xml_out_start(x, "units");
    for (int i = 0; i < PQntuples(rs); i++) {
        if (PQgetisnull(rs, i, 4))
            continue;
        xml_out_start(x, "unit");
        xml_out_attr(x, "code", PQgetvalue(rs, i, 4));
        xml_out_attr(x, "name", PQgetvalue(rs, i, 5));
        xml_out_attr(x, "kind", PQgetvalue(rs, i, 6));
        xml_out_end(x);
    }
    xml_out_end(x);
    return app_send_xml(req, res, x, 200);
}
