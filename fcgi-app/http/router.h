/* Method + path pattern to handler. Patterns are literal segments and
 * {name} placeholders, e.g. "/api/v1/regions/{code}". */
#ifndef ITPM_ROUTER_H
#define ITPM_ROUTER_H

#include "http/request.h"
#include "http/response.h"

#include <stddef.h>

#define ROUTER_MAX_SEGMENTS 16

typedef int (*handler_fn)(request_t *req, response_t *res);

typedef struct {
    const char *method;
    const char *pattern;
    handler_fn handler;
    unsigned roles; /* roles let in (user.h); ROLES_PUBLIC for everyone */
} route_t;

/* Authenticates and authorizes a matched route; 0 to go on, -1 with res set. */
typedef int (*guard_fn)(request_t *req, response_t *res, unsigned roles);

typedef enum { ROUTE_FOUND = 0, ROUTE_NOT_FOUND = -1, ROUTE_BAD_METHOD = -2, ROUTE_BAD_PATH = -3 } route_result_t;

/* Finds the route for method and path (path not decoded). On ROUTE_FOUND
 * *out is the route and req->params hold the decoded placeholders; on
 * ROUTE_BAD_METHOD allow receives the methods the path takes ("GET, HEAD"). */
route_result_t router_match(const route_t *routes, size_t nroutes, request_t *req,
                            const route_t **out, char *allow, size_t allowlen);
/* Dispatches req: the handler's answer, or a problem for 404/405/400. */
void router_dispatch(const route_t *routes, size_t nroutes, request_t *req, response_t *res,
                     guard_fn guard);

#endif
