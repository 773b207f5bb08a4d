/* The caller's scope (scope.h). */
#include "auth/scope.h"

#include <string.h>

/* Whether the comma-separated list holds item exactly. */
static int listed(const char *list, const char *item)
{
    size_t n = strlen(item);
    if (list == NULL || n == 0)
        return 0;
    for (const char *p = list; *p != '\0';) {
        size_t len = strcspn(p, ",");
        if (len == n && memcmp(p, item, n) == 0)
            return 1;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

void scope_of(const char *roles, const char *unit, const char *region, const char *cities,
              scope_t *out)
{
    int gate = listed(roles, "reviewer") || listed(roles, "director");
    int city = gate && region != NULL && listed(cities, region);
    int everything = city || listed(roles, "auditor") || listed(roles, "admin");
    out->all_read = everything ? "on" : "off";
    out->all_write = city ? "on" : "off";
    out->region = (gate || listed(roles, "county_admin")) && region != NULL ? region : "";
    out->unit = (listed(roles, "submitter") || listed(roles, "cdo")) && unit != NULL ? unit : "";
}
