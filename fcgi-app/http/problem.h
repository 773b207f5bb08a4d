/* RFC 9457 problem details as XML (namespace urn:ietf:rfc:7807): every error
 * the API returns goes through here. */
#ifndef ITPM_PROBLEM_H
#define ITPM_PROBLEM_H

#include "core/arena.h"
#include "http/response.h"

#include <stddef.h>

#define PROBLEM_NS "urn:ietf:rfc:7807"

typedef struct {
    int line;   /* 0 when unknown */
    int column; /* 0 when unknown */
    const char *message;
    long record; /* 1-based record of a bulk submission; 0 when none */
} problem_error_t;

typedef struct {
    int status;
    const char *title;  /* NULL: the reason phrase of status */
    const char *detail; /* may be NULL */
    const char *rule;   /* a rule name of SPEC section 4, or NULL */
    const problem_error_t *errors;
    size_t nerrors;
    size_t nerrors_total; /* errors found, when more than listed */
} problem_t;

/* Writes the document into the arena; returns 0 or -1 (then *body is a
 * static minimal document, so the client still gets a problem). */
int problem_render(arena_t *a, const problem_t *p, const char **body, size_t *len);
/* Sets res to the problem (status, content type, body). */
void problem_respond(arena_t *a, response_t *res, const problem_t *p);
/* The common case: status, detail and optional rule. */
void problem_simple(arena_t *a, response_t *res, int status, const char *detail, const char *rule);

#endif
