/* The route table of the API: method, path pattern, handler. */
#include "http/app.h"
#include "api/handlers.h"

#include "auth/user.h"


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
    {"POST", "/api/v1/batches", handle_batch_submit, ROLE_COUNTY_ADMIN | ROLE_REVIEWER},
    {"GET", "/api/v1/batches", handle_batch_list,
     ROLE_COUNTY_ADMIN | ROLE_REVIEWER | ROLE_DIRECTOR | ROLE_AUDITOR | ROLE_ADMIN},
    {"GET", "/api/v1/batches/{id}", handle_batch_get,
     ROLE_COUNTY_ADMIN | ROLE_REVIEWER | ROLE_DIRECTOR | ROLE_AUDITOR | ROLE_ADMIN},
    {"GET", "/api/v1/audit", handle_audit_list, ROLE_AUDITOR},
    {"GET", "/api/v1/audit/verify", handle_audit_verify, ROLE_AUDITOR | ROLE_ADMIN},
};

const size_t app_nroutes = sizeof app_routes / sizeof app_routes[0];
