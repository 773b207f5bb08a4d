/* A project declaration read from a validated <project> document, in the
 * shape the SQL functions take (strings, PostgreSQL array literals). Shared
 * by the project API and bulk submissions. */
#ifndef ITPM_DECLARATION_H
#define ITPM_DECLARATION_H

#include "core/arena.h"
#include "http/problem.h"

#include <libxml/tree.h>

typedef struct {
    const char *title, *unit, *year, *category;
    const char *classified, *soe, *public_institution, *cross_department, *vertical, *key;
    const char *urgent, *urgent_reason;
    const char *budget_fen;
    const char *funding, *mode, *exemption;
    const char *start, *end;
    const char *contact_name, *contact_phone, *contact_email, *summary;
    /* data resources as PostgreSQL array literals */
    const char *res_code, *res_name, *res_source, *res_share, *res_frequency, *res_aggregated;
    /* After a refusal: the rule of SPEC section 4 it broke, or NULL. */
    const char *rule;
} declaration_t;

/* Reads node (a <project> that passed the schema). Rules the schema cannot
 * say (self-built needs a reason, the schedule's order, duplicate resource
 * codes) are refused with one error each in err; returns 0 or -1. */
int declaration_read(arena_t *a, xmlNodePtr node, declaration_t *d, problem_error_t *err);
/* Whether s (UTF-8) is NULL or white space only, Unicode's included (the
 * ideographic space U+3000, no-break spaces): at least as strict as the
 * database's itpm_blank(), so nothing accepted here is blank there. */
int text_blank(const char *s);
/* A PostgreSQL text[] literal of n strings. */
char *pg_text_array(arena_t *a, const char *const *items, size_t n);
/* The same for a mutable list (NULL with n = 0 gives "{}"). */
char *pg_text_array_of(arena_t *a, const char **items, size_t n);

#endif
