/* The route table of the API: method, path pattern, handler. */
#include "app.h"
#include "handlers.h"
#include "problem.h"

#include "user.h"

#include <string.h>

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
    {"GET", "/api/v1/projects", handle_project_list, ROLES_ANY},
    {"POST", "/api/v1/projects", handle_project_create,
     ROLE_SUBMITTER | ROLE_REVIEWER | ROLE_COUNTY_ADMIN},
    {"GET", "/api/v1/projects/{code}", handle_project_get, ROLES_ANY},
    {"PUT", "/api/v1/projects/{code}", handle_project_update, ROLE_SUBMITTER},
    {"POST", "/api/v1/projects/{code}/transitions", handle_project_transition, ROLES_ANY},
    {"GET", "/api/v1/projects/{code}/events", handle_project_events, ROLES_ANY},
    {"POST", "/api/v1/projects/{code}/attachments", handle_attachment_upload,
     ROLE_SUBMITTER | ROLE_REVIEWER},
    {"GET", "/api/v1/projects/{code}/attachments", handle_attachment_list, ROLES_ANY},
    {"GET", "/api/v1/projects/{code}/attachments/{id}", handle_attachment_get, ROLES_ANY},
    {"GET", "/api/v1/projects/{code}/experts", handle_experts_list, ROLES_ANY},
    {"POST", "/api/v1/projects/{code}/experts", handle_experts_assign, ROLE_REVIEWER},
    {"PUT", "/api/v1/projects/{code}/experts/{id}", handle_expert_score, ROLE_EXPERT},
    {"POST", "/api/v1/projects/{code}/signoffs", handle_signoff, ROLE_JOINT_REVIEWER},
    {"GET", "/api/v1/config/windows", handle_config_windows_get, ROLE_ADMIN | ROLE_REVIEWER},
    {"PUT", "/api/v1/config/windows", handle_config_windows_put, ROLE_ADMIN},
    {"GET", "/api/v1/config/thresholds", handle_config_thresholds_get,
     ROLE_ADMIN | ROLE_REVIEWER},
    {"PUT", "/api/v1/config/thresholds", handle_config_thresholds_put, ROLE_ADMIN},
    {"GET", "/api/v1/config/experts", handle_config_experts_get, ROLE_ADMIN | ROLE_REVIEWER},
    {"PUT", "/api/v1/config/experts", handle_config_experts_put, ROLE_ADMIN},
    {"GET", "/api/v1/stats/overview", handle_stats_overview, ROLES_ANY},
    {"GET", "/api/v1/audit", handle_audit_list, ROLE_AUDITOR},
    {"GET", "/api/v1/audit/verify", handle_audit_verify, ROLE_AUDITOR | ROLE_ADMIN},
};

const size_t app_nroutes = sizeof app_routes / sizeof app_routes[0];

/* Rules of SPEC section 4 go into the problem's rule element; other
 * refusals (not found, forbidden, stale version) only set the status. */
static int is_spec_rule(const char *rule)
{
    static const char *const rules[] = {
        "wrong_stage", "window_closed", "urgent_reason_missing", "materials_missing",
        "endorsement_unit_mismatch", "experts_incomplete", "expert_mean_low",
        "expert_pool_too_small", "expert_conflict", "signoffs_missing", "budget_exceeds_request",
        "exemption_reason_missing", "trial_period_not_over", "data_not_aggregated",
        "assets_missing", "director_needed", "not_exit_candidate", "batch_conflict"};
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (strcmp(rule, rules[i]) == 0)
            return 1;
    return 0;
}

void app_db_problem(request_t *req, response_t *res, db_status_t status)
{
    if (status == DB_REFUSED) {
        const db_refusal_t *r = db_refusal(req->app->db);
        int code = r->status >= 400 && r->status <= 599 ? r->status : 409;
        problem_simple(req->arena, res, code, arena_strdup(req->arena, r->detail),
                       is_spec_rule(r->rule) ? arena_strdup(req->arena, r->rule) : NULL);
    } else if (status == DB_CONFLICT) {
        problem_simple(req->arena, res, 409, "the change conflicts with existing data", NULL);
    } else if (status == DB_FORBIDDEN) {
        problem_simple(req->arena, res, 403, "outside what you may change", NULL);
    } else if (status == DB_BAD_INPUT) {
        problem_simple(req->arena, res, 400, "a parameter has an invalid value", NULL);
    } else if (status == DB_UNAVAILABLE) {
        response_header(res, "Retry-After", "5");
        problem_simple(req->arena, res, 503, "the database is unavailable", NULL);
    } else {
        problem_simple(req->arena, res, 500, "the request could not be completed", NULL);
    }
}
