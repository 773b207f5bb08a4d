/* Every HTTP handler, grouped by resource; the route table is in routes.c. */
#ifndef ITPM_HANDLERS_H
#define ITPM_HANDLERS_H

#include "request.h"
#include "response.h"

/* health.c */
int handle_healthz(request_t *req, response_t *res);
int handle_readyz(request_t *req, response_t *res);
int handle_metrics(request_t *req, response_t *res);

/* regions.c */
int handle_regions_list(request_t *req, response_t *res);
int handle_region_get(request_t *req, response_t *res);

/* session_api.c */
int handle_session_login(request_t *req, response_t *res);
int handle_session_sso(request_t *req, response_t *res);
int handle_session_get(request_t *req, response_t *res);
int handle_session_delete(request_t *req, response_t *res);

/* projects.c */
int handle_project_create(request_t *req, response_t *res);
int handle_project_get(request_t *req, response_t *res);
int handle_project_update(request_t *req, response_t *res);
int handle_project_list(request_t *req, response_t *res);
int handle_project_transition(request_t *req, response_t *res);
int handle_project_events(request_t *req, response_t *res);

/* audit_api.c */
int handle_audit_list(request_t *req, response_t *res);
int handle_audit_verify(request_t *req, response_t *res);

#endif
