/* Every HTTP handler, grouped by resource; the route table is in routes.c. */
#ifndef ITPM_HANDLERS_H
#define ITPM_HANDLERS_H

#include "http/request.h"
#include "http/response.h"

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

/* records.c */
int handle_attachment_upload(request_t *req, response_t *res);
int handle_attachment_list(request_t *req, response_t *res);
int handle_attachment_get(request_t *req, response_t *res);
int handle_experts_list(request_t *req, response_t *res);
int handle_experts_assign(request_t *req, response_t *res);
int handle_expert_score(request_t *req, response_t *res);
int handle_signoff(request_t *req, response_t *res);

/* config_api.c */
int handle_config_windows_get(request_t *req, response_t *res);
int handle_config_windows_put(request_t *req, response_t *res);
int handle_config_thresholds_get(request_t *req, response_t *res);
int handle_config_thresholds_put(request_t *req, response_t *res);
int handle_config_experts_get(request_t *req, response_t *res);
int handle_config_experts_put(request_t *req, response_t *res);

/* stats_api.c */
int handle_stats_overview(request_t *req, response_t *res);

/* audit_api.c */
int handle_audit_list(request_t *req, response_t *res);
int handle_audit_verify(request_t *req, response_t *res);

/* batch_api.c */
int handle_batch_submit(request_t *req, response_t *res);
int handle_batch_get(request_t *req, response_t *res);
int handle_batch_list(request_t *req, response_t *res);

#endif
