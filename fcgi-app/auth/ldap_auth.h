/* Staff login against the directory: find the entry by uid (filter value
 * escaped per RFC 4515), bind as its DN with the password, read the unit,
 * region and groups. Each worker keeps its own connections, opened lazily
 * and re-opened after a failure; every operation is bounded by time-outs. */
#ifndef ITPM_LDAP_AUTH_H
#define ITPM_LDAP_AUTH_H

#include "core/arena.h"
#include "core/conf.h"
#include "auth/user.h"

#include <stddef.h>

typedef enum {
    DIR_OK = 0,
    DIR_DENIED = -1,      /* unknown, ambiguous, wrong password, empty password */
    DIR_INCOMPLETE = -2,  /* authenticated, but no role, unit or region for itpm */
    DIR_UNAVAILABLE = -3, /* directory down, slow or misconfigured */
} dir_status_t;

typedef struct ldap_dir ldap_dir_t;

ldap_dir_t *ldap_dir_create(const conf_t *conf);
void ldap_dir_destroy(ldap_dir_t *dir);
/* Whether a directory is configured at all. */
int ldap_dir_enabled(const conf_t *conf);
/* Authenticates; fills user on DIR_OK. *reason says why otherwise (for the
 * log and the audit record, never for the client). */
dir_status_t ldap_dir_login(ldap_dir_t *dir, arena_t *a, const char *username,
                            const char *password, user_t *user, const char **reason);
/* 0 when the directory answers a base search, -1 otherwise. */
int ldap_dir_ping(ldap_dir_t *dir);
/* Builds a filter from a template holding one %s, the value escaped with
 * libldap's ldap_bv2escaped_filter_value. Returns 0, or -1 if out is too small. */
int ldap_filter_build(const char *tmpl, const char *value, char *out, size_t outlen);

#endif
