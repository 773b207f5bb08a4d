/* Route matching by segments; HEAD is served by GET routes. */
#include "http/router.h"

#include "http/problem.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *start;
    size_t len;
} segment_t;

/* Splits "/a/b/c" into segments; -1 when there are too many, an empty
 * segment ("//") or a dot segment, which no route has. */
static int split(const char *path, segment_t *segs, int max)
{
    int n = 0;
    const char *p = path;
    if (*p != '/')
        return -1;
    if (p[1] == '\0')
        return 0;
    while (*p == '/') {
        p++;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 && end == NULL && n > 0)
            break; /* one trailing slash */
        if (len == 0 || n == max)
            return -1;
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return -1;
        segs[n].start = p;
        segs[n].len = len;
        n++;
        p += len;
    }
    return n;
}

static int method_matches(const char *route_method, const char *method)
{
    if (strcmp(route_method, method) == 0)
        return 1;
    return strcmp(route_method, "GET") == 0 && strcmp(method, "HEAD") == 0;
}

/* Patterns split once per process: the route tables are static. */
#define ROUTER_CACHE 128

typedef struct {
    const char *pattern;
    segment_t segs[ROUTER_MAX_SEGMENTS];
    int n;
} compiled_t;

static compiled_t compiled[ROUTER_CACHE];

static int pattern_split(const char *pattern, const segment_t **out)
{
    size_t h = ((uintptr_t)pattern >> 3) % ROUTER_CACHE;
    for (size_t i = 0; i < ROUTER_CACHE; i++) {
        compiled_t *c = &compiled[(h + i) % ROUTER_CACHE];
        if (c->pattern == pattern) {
            *out = c->segs;
            return c->n;
        }
        if (c->pattern == NULL) {
            c->n = split(pattern, c->segs, ROUTER_MAX_SEGMENTS);
            c->pattern = pattern;
            *out = c->segs;
            return c->n;
        }
    }
    static segment_t scratch[ROUTER_MAX_SEGMENTS];
    *out = scratch;
    return split(pattern, scratch, ROUTER_MAX_SEGMENTS);
}

/* Matches path segments against pattern; fills req->params when req given. */
static int pattern_matches(const char *pattern, const segment_t *segs, int nsegs, request_t *req,
                           int *bad_escape)
{
    const segment_t *pat;
    int np = pattern_split(pattern, &pat);
    if (np != nsegs)
        return 0;
    for (int i = 0; i < np; i++) {
        if (pat[i].start[0] == '{')
            continue;
        if (pat[i].len != segs[i].len || memcmp(pat[i].start, segs[i].start, segs[i].len) != 0)
            return 0;
    }
    if (req == NULL)
        return 1;
    req->nparams = 0;
    for (int i = 0; i < np; i++) {
        if (pat[i].start[0] != '{' || req->nparams == REQUEST_MAX_PARAMS)
            continue;
        char *v = url_decode(req->arena, segs[i].start, segs[i].len, 0);
        if (v == NULL) {
            *bad_escape = 1;
            return 0;
        }
        req->params[req->nparams++] = v;
    }
    return 1;
}

static void allow_add(char *allow, size_t allowlen, const char *method)
{
    if (strstr(allow, method) != NULL)
        return;
    size_t n = strlen(allow);
    snprintf(allow + n, allowlen - n, "%s%s", n ? ", " : "", method);
}

route_result_t router_match(const route_t *routes, size_t nroutes, request_t *req,
                            const route_t **out, char *allow, size_t allowlen)
{
    segment_t segs[ROUTER_MAX_SEGMENTS];
    int nsegs = split(req->path, segs, ROUTER_MAX_SEGMENTS);
    allow[0] = '\0';
    if (nsegs < 0)
        return ROUTE_NOT_FOUND;
    int path_known = 0;
    for (size_t i = 0; i < nroutes; i++) {
        if (!pattern_matches(routes[i].pattern, segs, nsegs, NULL, NULL))
            continue;
        path_known = 1;
        if (method_matches(routes[i].method, req->method)) {
            int bad = 0;
            if (!pattern_matches(routes[i].pattern, segs, nsegs, req, &bad))
                return bad ? ROUTE_BAD_PATH : ROUTE_NOT_FOUND;
            *out = &routes[i];
            return ROUTE_FOUND;
        }
    }
    if (!path_known)
        return ROUTE_NOT_FOUND;
    for (size_t i = 0; i < nroutes; i++) {
        if (!pattern_matches(routes[i].pattern, segs, nsegs, NULL, NULL))
            continue;
        allow_add(allow, allowlen, routes[i].method);
        if (strcmp(routes[i].method, "GET") == 0)
            allow_add(allow, allowlen, "HEAD");
    }
    return ROUTE_BAD_METHOD;
}

void router_dispatch(const route_t *routes, size_t nroutes, request_t *req, response_t *res,
                     guard_fn guard)
{
    const route_t *route = NULL;
    char allow[128];
    switch (router_match(routes, nroutes, req, &route, allow, sizeof allow)) {
    case ROUTE_FOUND:
        if (guard != NULL && guard(req, res, route->roles) < 0)
            return;
        route->handler(req, res);
        return;
    case ROUTE_BAD_METHOD:
        response_header(res, "Allow", arena_strdup(req->arena, allow));
        problem_simple(req->arena, res, 405,
                       arena_printf(req->arena, "this resource takes %s", allow), NULL);
        return;
    case ROUTE_BAD_PATH:
        problem_simple(req->arena, res, 400, "the path has a bad percent-escape", NULL);
        return;
    case ROUTE_NOT_FOUND:
        problem_simple(req->arena, res, 404, "no such resource", NULL);
        return;
    }
}
