/* Unit tests for router.c: literal and {param} matches, percent-decoding of
 * parameters, 404/405/400 outcomes with the Allow list, HEAD on GET routes,
 * odd paths (trailing slash, //, dot segments, huge paths) and dispatch. */
#include "http/router.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int h_ok(request_t *req, response_t *res)
{
    response_body(res, 200, "text/plain", "ok", 2);
    (void)req;
    return 0;
}

static int h_created(request_t *req, response_t *res)
{
    response_body(res, 201, "text/plain", "made", 4);
    (void)req;
    return 0;
}

static const route_t routes[] = {
    {"GET", "/healthz", h_ok, 0},
    {"GET", "/api/v1/regions", h_ok, 1},
    {"GET", "/api/v1/regions/{code}", h_ok, 2},
    {"POST", "/api/v1/session", h_created, 0},
    {"GET", "/api/v1/session", h_ok, 3},
    {"DELETE", "/api/v1/session", h_ok, 3},
    {"GET", "/a/{x}/b/{y}", h_ok, 0},
    {"PUT", "/only-put", h_ok, 0},
    {"GET", "/api/v1/audit", h_ok, 4},
    {"GET", "/api/v1/audit/verify", h_ok, 5},
};
#define NROUTES (sizeof routes / sizeof routes[0])

typedef struct {
    arena_t *arena;
    request_t req;
    const route_t *route;
    char allow[128];
} ctx_t;

static int setup(void **state)
{
    ctx_t *c = calloc(1, sizeof *c);
    c->arena = arena_create(4096);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx_t *c = *state;
    arena_destroy(c->arena);
    free(c);
    return 0;
}

static route_result_t match(ctx_t *c, const char *method, const char *path)
{
    memset(&c->req, 0, sizeof c->req);
    c->req.arena = c->arena;
    c->req.method = method;
    c->req.path = path;
    c->req.query = "";
    c->route = NULL;
    return router_match(routes, NROUTES, &c->req, &c->route, c->allow, sizeof c->allow);
}

static void test_literal_match(void **state)
{
    ctx_t *c = *state;
    assert_int_equal(match(c, "GET", "/healthz"), ROUTE_FOUND);
    assert_ptr_equal(c->route, &routes[0]);
    assert_int_equal(c->req.nparams, 0);
    assert_int_equal(match(c, "GET", "/api/v1/regions"), ROUTE_FOUND);
    assert_ptr_equal(c->route, &routes[1]);
    /* A literal segment beats nothing: /audit/verify is its own route. */
    assert_int_equal(match(c, "GET", "/api/v1/audit/verify"), ROUTE_FOUND);
    assert_ptr_equal(c->route, &routes[9]);
    assert_int_equal(match(c, "POST", "/api/v1/session"), ROUTE_FOUND);
    assert_ptr_equal(c->route, &routes[3]);
    assert_int_equal(match(c, "DELETE", "/api/v1/session"), ROUTE_FOUND);
    assert_ptr_equal(c->route, &routes[5]);
}

static void test_param_match(void **state)
{
    ctx_t *c = *state;
    assert_int_equal(match(c, "GET", "/api/v1/regions/110000"), ROUTE_FOUND);
    assert_ptr_equal(c->route, &routes[2]);
    assert_int_equal(c->req.nparams, 1);
    assert_string_equal(c->req.params[0], "110000");

    assert_int_equal(match(c, "GET", "/a/one/b/two"), ROUTE_FOUND);
    assert_ptr_equal(c->route, &routes[6]);
    assert_int_equal(c->req.nparams, 2);
    assert_string_equal(c->req.params[0], "one");
    assert_string_equal(c->req.params[1], "two");

    /* Matching a route without parameters clears the previous ones. */
    assert_int_equal(match(c, "GET", "/healthz"), ROUTE_FOUND);
    assert_int_equal(c->req.nparams, 0);
}

static void test_params_are_percent_decoded(void **state)
{
    ctx_t *c = *state;
    assert_int_equal(match(c, "GET", "/a/x%20y/b/%E4%B8%AD%e6%96%87"), ROUTE_FOUND);
    assert_string_equal(c->req.params[0], "x y");
    assert_string_equal(c->req.params[1], "\xe4\xb8\xad\xe6\x96\x87");
    /* In a path '+' is a plus, not a space. */
    assert_int_equal(match(c, "GET", "/api/v1/regions/a+b"), ROUTE_FOUND);
    assert_string_equal(c->req.params[0], "a+b");
    assert_int_equal(match(c, "GET", "/api/v1/regions/%41%2B"), ROUTE_FOUND);
    assert_string_equal(c->req.params[0], "A+");
}

static void test_bad_escape_is_bad_path(void **state)
{
    ctx_t *c = *state;
    assert_int_equal(match(c, "GET", "/api/v1/regions/%zz"), ROUTE_BAD_PATH);
    assert_int_equal(match(c, "GET", "/api/v1/regions/%00"), ROUTE_BAD_PATH);
    assert_int_equal(match(c, "GET", "/api/v1/regions/ab%4"), ROUTE_BAD_PATH);
    assert_int_equal(match(c, "GET", "/api/v1/regions/%"), ROUTE_BAD_PATH);
    assert_int_equal(match(c, "GET", "/a/ok/b/%0"), ROUTE_BAD_PATH);
    assert_int_equal(match(c, "HEAD", "/api/v1/regions/x%00y"), ROUTE_BAD_PATH);
}

static void test_unknown_path_not_found(void **state)
{
    ctx_t *c = *state;
    static const char *const paths[] = {
        "/nope", "/", "", "healthz", "/api", "/api/v1", "/api/v1/regions/1/2",
        "/HEALTHZ", "/healthzz", "/a/x/b", "/a/x/c/y", "/api/v1/%72egions",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        assert_int_equal(match(c, "GET", paths[i]), ROUTE_NOT_FOUND);
        assert_null(c->route);
        assert_string_equal(c->allow, "");
    }
}

static void test_wrong_method_lists_allow(void **state)
{
    ctx_t *c = *state;
    assert_int_equal(match(c, "POST", "/healthz"), ROUTE_BAD_METHOD);
    assert_string_equal(c->allow, "GET, HEAD");
    assert_null(c->route);

    assert_int_equal(match(c, "PATCH", "/api/v1/session"), ROUTE_BAD_METHOD);
    assert_string_equal(c->allow, "POST, GET, HEAD, DELETE");

    assert_int_equal(match(c, "DELETE", "/api/v1/regions/42"), ROUTE_BAD_METHOD);
    assert_string_equal(c->allow, "GET, HEAD");

    assert_int_equal(match(c, "GET", "/only-put"), ROUTE_BAD_METHOD);
    assert_string_equal(c->allow, "PUT");

    /* Methods are case-sensitive (RFC 9110 section 9.1). */
    assert_int_equal(match(c, "get", "/healthz"), ROUTE_BAD_METHOD);
    assert_string_equal(c->allow, "GET, HEAD");
}

static void test_head_is_served_by_get(void **state)
{
    ctx_t *c = *state;
    assert_int_equal(match(c, "HEAD", "/healthz"), ROUTE_FOUND);
    assert_ptr_equal(c->route, &routes[0]);
    assert_int_equal(match(c, "HEAD", "/api/v1/regions/7"), ROUTE_FOUND);
    assert_string_equal(c->req.params[0], "7");
    /* ...but only by GET. */
    assert_int_equal(match(c, "HEAD", "/only-put"), ROUTE_BAD_METHOD);
    assert_string_equal(c->allow, "PUT");
}

static void test_trailing_slash(void **state)
{
    ctx_t *c = *state;
    /* One trailing slash is tolerated; two make an empty segment. */
    assert_int_equal(match(c, "GET", "/healthz/"), ROUTE_FOUND);
    assert_ptr_equal(c->route, &routes[0]);
    assert_int_equal(match(c, "GET", "/api/v1/regions/42/"), ROUTE_FOUND);
    assert_string_equal(c->req.params[0], "42");
    assert_int_equal(match(c, "GET", "/healthz//"), ROUTE_NOT_FOUND);
}

static void test_empty_and_dot_segments_not_found(void **state)
{
    ctx_t *c = *state;
    static const char *const paths[] = {
        "//",
        "//healthz",
        "/api//v1/regions",
        "/api/v1/regions//",
        "/api/v1/./regions",
        "/api/v1/regions/.",
        "/api/v1/regions/..",
        "/api/v1/regions/../regions",
        "/./healthz",
        "/../healthz",
        "/.",
        "/..",
        "/a/./b/y",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        assert_int_equal(match(c, "GET", paths[i]), ROUTE_NOT_FOUND);
    /* Segments that merely start with a dot are ordinary. */
    assert_int_equal(match(c, "GET", "/api/v1/regions/.x"), ROUTE_FOUND);
    assert_string_equal(c->req.params[0], ".x");
    assert_int_equal(match(c, "GET", "/api/v1/regions/..."), ROUTE_FOUND);
}

static void test_too_many_segments_not_found(void **state)
{
    ctx_t *c = *state;
    /* ROUTER_MAX_SEGMENTS + 1 segments. */
    char path[3 * (ROUTER_MAX_SEGMENTS + 1) + 1] = "";
    for (int i = 0; i <= ROUTER_MAX_SEGMENTS; i++)
        strcat(path, "/ab");
    assert_int_equal(match(c, "GET", path), ROUTE_NOT_FOUND);

    /* 10,000 segments. */
    size_t n = 10000;
    char *big = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        big[2 * i] = '/';
        big[2 * i + 1] = 'a';
    }
    big[2 * n] = '\0';
    assert_int_equal(match(c, "GET", big), ROUTE_NOT_FOUND);
    assert_int_equal(match(c, "POST", big), ROUTE_NOT_FOUND);
    free(big);
}

static void test_64k_path(void **state)
{
    ctx_t *c = *state;
    size_t n = 64 * 1024;
    char *path = malloc(n + 1);
    path[0] = '/';
    memset(path + 1, 'x', n - 1);
    path[n] = '\0';
    assert_int_equal(match(c, "GET", path), ROUTE_NOT_FOUND);

    /* The same length inside a parameter: found, decoded in full. */
    const char *prefix = "/api/v1/regions/";
    size_t plen = strlen(prefix);
    memcpy(path, prefix, plen);
    for (size_t i = plen; i + 3 <= n; i += 3)
        memcpy(path + i, "%41", 3);
    size_t escapes = (n - plen) / 3;
    path[plen + 3 * escapes] = '\0';
    assert_int_equal(match(c, "GET", path), ROUTE_FOUND);
    assert_int_equal(strlen(c->req.params[0]), escapes);
    assert_int_equal(c->req.params[0][0], 'A');
    free(path);
}

/* ---- router_dispatch ---- */

static unsigned guard_roles_seen;
static int guard_calls;

static int guard_allow(request_t *req, response_t *res, unsigned roles)
{
    (void)req;
    (void)res;
    guard_calls++;
    guard_roles_seen = roles;
    return 0;
}

static int guard_refuse(request_t *req, response_t *res, unsigned roles)
{
    (void)req;
    (void)roles;
    guard_calls++;
    response_body(res, 401, "text/plain", "no", 2);
    return -1;
}

static void dispatch(ctx_t *c, response_t *res, const char *method, const char *path,
                     guard_fn guard)
{
    memset(&c->req, 0, sizeof c->req);
    c->req.arena = c->arena;
    c->req.method = method;
    c->req.path = path;
    c->req.query = "";
    response_init(res);
    router_dispatch(routes, NROUTES, &c->req, res, guard);
}

static const char *find_header(const response_t *res, const char *name)
{
    for (int i = 0; i < res->nheaders; i++)
        if (strcmp(res->headers[i].name, name) == 0)
            return res->headers[i].value;
    return NULL;
}

static void assert_problem(const response_t *res, int status, const char *title,
                           const char *detail)
{
    char want[256];
    assert_int_equal(res->status, status);
    assert_string_equal(res->content_type, "application/problem+xml");
    assert_non_null(res->body);
    assert_int_equal(strlen(res->body), res->body_len);
    assert_non_null(strstr(res->body, "<problem xmlns=\"urn:ietf:rfc:7807\">"));
    snprintf(want, sizeof want, "<status>%d</status>", status);
    assert_non_null(strstr(res->body, want));
    snprintf(want, sizeof want, "<title>%s</title>", title);
    assert_non_null(strstr(res->body, want));
    snprintf(want, sizeof want, "<detail>%s</detail>", detail);
    assert_non_null(strstr(res->body, want));
}

static void test_dispatch_calls_handler_after_guard(void **state)
{
    ctx_t *c = *state;
    response_t res;
    guard_calls = 0;
    dispatch(c, &res, "GET", "/api/v1/regions/9", guard_allow);
    assert_int_equal(guard_calls, 1);
    assert_int_equal(guard_roles_seen, 2);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "ok");
    assert_string_equal(c->req.params[0], "9");

    dispatch(c, &res, "POST", "/api/v1/session", NULL);
    assert_int_equal(res.status, 201);
}

static void test_dispatch_guard_refusal_skips_handler(void **state)
{
    ctx_t *c = *state;
    response_t res;
    guard_calls = 0;
    dispatch(c, &res, "POST", "/api/v1/session", guard_refuse);
    assert_int_equal(guard_calls, 1);
    assert_int_equal(res.status, 401);
    assert_string_equal(res.body, "no");
}

static void test_dispatch_404(void **state)
{
    ctx_t *c = *state;
    response_t res;
    guard_calls = 0;
    dispatch(c, &res, "GET", "/nope", guard_allow);
    assert_problem(&res, 404, "Not Found", "no such resource");
    assert_null(find_header(&res, "Allow"));
    assert_int_equal(guard_calls, 0);
}

static void test_dispatch_405_with_allow(void **state)
{
    ctx_t *c = *state;
    response_t res;
    guard_calls = 0;
    dispatch(c, &res, "DELETE", "/healthz", guard_allow);
    assert_problem(&res, 405, "Method Not Allowed", "this resource takes GET, HEAD");
    assert_string_equal(find_header(&res, "Allow"), "GET, HEAD");
    assert_int_equal(guard_calls, 0);

    dispatch(c, &res, "PUT", "/api/v1/session", guard_allow);
    assert_problem(&res, 405, "Method Not Allowed", "this resource takes POST, GET, HEAD, DELETE");
    assert_string_equal(find_header(&res, "Allow"), "POST, GET, HEAD, DELETE");
}

static void test_dispatch_400_bad_escape(void **state)
{
    ctx_t *c = *state;
    response_t res;
    guard_calls = 0;
    dispatch(c, &res, "GET", "/api/v1/regions/%zz", guard_allow);
    assert_problem(&res, 400, "Bad Request", "the path has a bad percent-escape");
    assert_int_equal(guard_calls, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_literal_match),
        T(test_param_match),
        T(test_params_are_percent_decoded),
        T(test_bad_escape_is_bad_path),
        T(test_unknown_path_not_found),
        T(test_wrong_method_lists_allow),
        T(test_head_is_served_by_get),
        T(test_trailing_slash),
        T(test_empty_and_dot_segments_not_found),
        T(test_too_many_segments_not_found),
        T(test_64k_path),
        T(test_dispatch_calls_handler_after_guard),
        T(test_dispatch_guard_refusal_skips_handler),
        T(test_dispatch_404),
        T(test_dispatch_405_with_allow),
        T(test_dispatch_400_bad_escape),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
