/* Liveness, readiness and the pool's Prometheus counters. */
#include "http/app.h"
#include "api/handlers.h"
#include "http/problem.h"

#include <string.h>

static const db_stmt_t stmt_ping = {"ping", "SELECT 1", 0, 1};

int handle_healthz(request_t *req, response_t *res)
{
    (void)req;
    static const char ok[] = "ok\n";
    response_body(res, 200, "text/plain; charset=utf-8", ok, sizeof ok - 1);
    return 0;
}

int handle_readyz(request_t *req, response_t *res)
{
    db_status_t status;
    if (db_query(req->app->db, req->arena, &stmt_ping, NULL, &status) == NULL) {
        response_header(res, "Retry-After", "5");
        problem_t p = {.status = 503, .detail = "dependency down: database"};
        problem_respond(req->arena, res, &p);
        return -1;
    }
    if (ldap_dir_enabled(req->conf) && ldap_dir_ping(req->app->dir) < 0) {
        response_header(res, "Retry-After", "5");
        problem_t p = {.status = 503, .detail = "dependency down: directory"};
        problem_respond(req->arena, res, &p);
        return -1;
    }
    static const char ok[] = "ready\n";
    response_body(res, 200, "text/plain; charset=utf-8", ok, sizeof ok - 1);
    return 0;
}

int handle_metrics(request_t *req, response_t *res)
{
    size_t size = 16384;
    char *buf = arena_alloc(req->arena, size);
    int n = scoreboard_render(req->app->sb, buf, size);
    if (n < 0) {
        problem_simple(req->arena, res, 500, "metrics buffer too small", NULL);
        return -1;
    }
    response_body(res, 200, "text/plain; version=0.0.4; charset=utf-8", buf, (size_t)n);
    return 0;
}
