/* Role names and their bit sets. */
#include "auth/user.h"

#include <stdio.h>
#include <string.h>

const char *const role_names[ROLE_COUNT] = {
    "submitter", "cdo",          "reviewer",  "director", "expert",
    "joint_reviewer", "county_admin", "evaluator", "auditor",  "admin",
};

unsigned role_from_name(const char *name)
{
    for (int i = 0; i < ROLE_COUNT; i++)
        if (strcmp(role_names[i], name) == 0)
            return 1u << i;
    return 0;
}

char *roles_format(arena_t *a, unsigned roles)
{
    size_t n = 1;
    for (int i = 0; i < ROLE_COUNT; i++)
        if (roles & (1u << i))
            n += strlen(role_names[i]) + 1;
    char *out = arena_alloc(a, n);
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < ROLE_COUNT; i++) {
        if (!(roles & (1u << i)))
            continue;
        int w = snprintf(out + len, n - len, "%s%s", len ? "," : "", role_names[i]);
        if (w > 0)
            len += (size_t)w;
    }
    return out;
}

unsigned roles_parse_pg_array(const char *literal)
{
    unsigned roles = 0;
    char name[40];
    const char *p = literal;
    if (*p == '{')
        p++;
    while (*p != '\0' && *p != '}') {
        size_t n = strcspn(p, ",}");
        if (n < sizeof name) {
            memcpy(name, p, n);
            name[n] = '\0';
            roles |= role_from_name(name);
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return roles;
}

int region_code_valid(const char *s)
{
    return strlen(s) == 6 && strspn(s, "0123456789") == 6;
}

int unit_code_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 9 || n > 23 || strspn(s, "0123456789") != 6 || s[6] != '-')
        return 0;
    return strspn(s + 7, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == n - 7;
}
