/* Helpers every handler shares: the caller as the database sees it, the
 * XML answer, and the problem for a failed database call. */
#include "http/app.h"

#include "http/problem.h"
#include "auth/user.h"

#include <string.h>

const db_stmt_t app_stmt_project_exists = {
    "project_exists", "SELECT 1 FROM projects WHERE code = $1", 1, 1};

void app_actor(request_t *req, db_actor_t *actor)
{
    const user_t *u = req->user;
    actor->user_id = u->id;
    actor->unit = u->unit;
    actor->region = u->region;
    actor->roles = roles_format(req->arena, u->roles);
    actor->classified = u->classified;
}

int app_batch(request_t *req, response_t *res, const db_stmt_t *const *stmts,
              const char *const *const *values, int n, PGresult **out)
{
    db_actor_t actor;
    app_actor(req, &actor);
    db_status_t status;
    if (db_batch_as(req->app->db, req->arena, &actor, stmts, values, n, out, &status) < 0) {
        app_db_problem(req, res, status);
        return -1;
    }
    return 0;
}

int app_send_xml(request_t *req, response_t *res, xml_out_t *x, int status)
{
    const char *body;
    size_t len;
    if (xml_out_finish(x, &body, &len) < 0) {
        problem_simple(req->arena, res, 500, "the response could not be written", NULL);
        return -1;
    }
    response_body(res, status, "application/xml; charset=utf-8", body, len);
    return 0;
}

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
    } else if (status == DB_NO_REFERENT) {
        problem_simple(req->arena, res, 422,
                       "the document names a region, unit or user that does not exist", NULL);
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
