/* The authenticated caller, whichever way it came in (directory login,
 * session cookie, SSO bearer token), and the platform's roles. */
#ifndef ITPM_USER_H
#define ITPM_USER_H

#include "core/arena.h"

enum {
    ROLE_SUBMITTER = 1u << 0,
    ROLE_CDO = 1u << 1,
    ROLE_REVIEWER = 1u << 2,
    ROLE_DIRECTOR = 1u << 3,
    ROLE_EXPERT = 1u << 4,
    ROLE_JOINT_REVIEWER = 1u << 5,
    ROLE_COUNTY_ADMIN = 1u << 6,
    ROLE_EVALUATOR = 1u << 7,
    ROLE_AUDITOR = 1u << 8,
    ROLE_ADMIN = 1u << 9,
};
#define ROLE_COUNT 10
#define ROLES_ANY ((1u << ROLE_COUNT) - 1)
/* A route open to everyone, logged in or not. */
#define ROLES_PUBLIC 0u

typedef enum { AUTH_NONE = 0, AUTH_COOKIE, AUTH_BEARER } auth_via_t;

typedef struct user {
    char id[129];
    char name[129];
    char unit[33];
    char region[9];
    unsigned roles;
    int classified;
    auth_via_t via;
    char csrf[64];  /* cookie sessions only */
    char expires[40];
} user_t;

/* Name of role bit i (0..ROLE_COUNT-1). */
extern const char *const role_names[ROLE_COUNT];
/* The bit of a role name, 0 when unknown. */
unsigned role_from_name(const char *name);
/* "reviewer,director" */
char *roles_format(arena_t *a, unsigned roles);
/* A region code (six digits) and a unit code (the region, '-', 2 to 16
 * of A-Z 0-9), as xsd/ writes them: what a directory entry or a token
 * claims is used only in that form. */
int region_code_valid(const char *s);
int unit_code_valid(const char *s);
/* Parses a PostgreSQL text[] literal ({a,b}) of role names. */
unsigned roles_parse_pg_array(const char *literal);

#endif
