/* The caller's scope as the row-level security policies read it (the
 * itpm.scope_* settings, sql/004_lifecycle.sql), worked out from the
 * caller's roles, unit and region. The same rule as itpm_scope()
 * (sql/007_hot_paths.sql), which psql sessions and the tests set the
 * context with: the daemon computes it here so that setting the context
 * costs the server only the settings themselves. */
#ifndef ITPM_SCOPE_H
#define ITPM_SCOPE_H

typedef struct {
    const char *all_read;  /* "on": every region, to read */
    const char *all_write; /* "on": every region, to change */
    const char *region;    /* the region seen whole, or "" */
    const char *unit;      /* the unit seen whole, or "" */
} scope_t;

/* roles: comma-separated ("reviewer,director"); cities: the codes of the
 * regions of kind city, comma-separated. Never fails; the strings in *out
 * are literals or the caller's unit and region. */
void scope_of(const char *roles, const char *unit, const char *region, const char *cities,
              scope_t *out);

#endif
