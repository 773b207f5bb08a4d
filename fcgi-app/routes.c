/* The route table of the API: method, path pattern, handler. */
#include "app.h"
#include "handlers.h"
#include "problem.h"

const route_t app_routes[] = {
    {"GET", "/healthz", handle_healthz},
    {"GET", "/readyz", handle_readyz},
    {"GET", "/metrics", handle_metrics},
    {"GET", "/api/v1/regions", handle_regions_list},
    {"GET", "/api/v1/regions/{code}", handle_region_get},
};

const size_t app_nroutes = sizeof app_routes / sizeof app_routes[0];

void app_db_problem(request_t *req, response_t *res, db_status_t status)
{
    if (status == DB_UNAVAILABLE) {
        response_header(res, "Retry-After", "5");
        problem_simple(req->arena, res, 503, "the database is unavailable", NULL);
    } else {
        problem_simple(req->arena, res, 500, "the request could not be completed", NULL);
    }
}
