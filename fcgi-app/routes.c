/* The route table of the API: method, path pattern, handler. */
#include "app.h"
#include "handlers.h"
#include "problem.h"

#include "user.h"

const route_t app_routes[] = {
    {"GET", "/healthz", handle_healthz, ROLES_PUBLIC},
    {"GET", "/readyz", handle_readyz, ROLES_PUBLIC},
    {"GET", "/metrics", handle_metrics, ROLES_PUBLIC},
    {"POST", "/api/v1/session", handle_session_login, ROLES_PUBLIC},
    {"GET", "/api/v1/session", handle_session_get, ROLES_ANY},
    {"DELETE", "/api/v1/session", handle_session_delete, ROLES_ANY},
    {"POST", "/api/v1/session/sso", handle_session_sso, ROLES_PUBLIC},
    {"GET", "/api/v1/regions", handle_regions_list, ROLES_ANY},
    {"GET", "/api/v1/regions/{code}", handle_region_get, ROLES_ANY},
    {"GET", "/api/v1/audit", handle_audit_list, ROLE_AUDITOR},
    {"GET", "/api/v1/audit/verify", handle_audit_verify, ROLE_AUDITOR | ROLE_ADMIN},
};

const size_t app_nroutes = sizeof app_routes / sizeof app_routes[0];

void app_db_problem(request_t *req, response_t *res, db_status_t status)
{
    if (status == DB_BAD_INPUT) {
        problem_simple(req->arena, res, 400, "a parameter has an invalid value", NULL);
    } else if (status == DB_UNAVAILABLE) {
        response_header(res, "Retry-After", "5");
        problem_simple(req->arena, res, 503, "the database is unavailable", NULL);
    } else {
        problem_simple(req->arena, res, 500, "the request could not be completed", NULL);
    }
}
