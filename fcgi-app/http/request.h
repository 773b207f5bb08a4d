/* One HTTP request as the worker sees it: FastCGI parameters turned into
 * fields, header and query look-ups, and the bounded body read. */
#ifndef ITPM_REQUEST_H
#define ITPM_REQUEST_H

#include "core/arena.h"
#include "core/conf.h"
#include "http/response.h"

#include <fcgiapp.h>
#include <stdint.h>

#define REQUEST_MAX_PARAMS 4
#define REQUEST_ID_MAX 64

struct app;
struct user;

typedef struct request {
    arena_t *arena;
    const conf_t *conf;
    struct app *app;
    FCGX_Stream *in;
    FCGX_Stream *out;
    FCGX_ParamArray envp;
    const char *method;
    const char *uri;   /* REQUEST_URI as sent */
    const char *path;  /* uri up to '?' (not decoded) */
    const char *query; /* after '?', "" if none */
    const char *content_type;
    long long content_length; /* -1 when absent */
    const char *remote_addr;
    char request_id[REQUEST_ID_MAX + 1];
    const char *params[REQUEST_MAX_PARAMS]; /* path parameters, decoded */
    int nparams;
    const char *body;
    size_t body_len;
    struct user *user;   /* NULL until authenticated */
    const char *user_id; /* for the request log; "-" until authenticated */
    int64_t start_us;
} request_t;

/* Fills r from FastCGI parameters. Returns 0 or -1 with a problem set in res
 * (a request line the daemon cannot take). */
int request_init(request_t *r, arena_t *a, FCGX_Stream *in, FCGX_ParamArray envp, response_t *res);
/* A request header by its HTTP name ("X-CSRF-Token"), NULL when absent. */
const char *request_header(const request_t *r, const char *name);
/* A decoded query parameter, NULL when absent. */
const char *request_query(const request_t *r, const char *name);
/* The file name of a Content-Disposition request header (RFC 6266: an
 * extended filename*=UTF-8''… before a plain filename=…), NULL when there is
 * none or it cannot be read. */
const char *request_disposition_filename(const request_t *r);
/* Checks the content type against accepted (a NULL-terminated list of media
 * types, parameters ignored); 415 problem in res on mismatch. */
int request_require_type(request_t *r, response_t *res, const char *const *accepted);
/* Reads the whole body (at most conf->max_body bytes) into the arena; 413
 * before reading when Content-Length is over the limit. 0 or -1 with res set. */
int request_read_body(request_t *r, response_t *res);
/* Percent-decodes s (n bytes) into the arena; NULL on a bad escape or %00. */
char *url_decode(arena_t *a, const char *s, size_t n, int plus_is_space);
/* For a body written as it is made: sends the status line and headers (no
 * Content-Length) and marks res as sent; the body then goes out through
 * request_write(). -1 when the client went away. */
int request_stream_head(request_t *r, response_t *res, int status, const char *content_type);
int request_write(request_t *r, const char *buf, size_t len);
/* Writes the response to the FastCGI stream; -1 when the client went away. */
int request_send(request_t *r, FCGX_Stream *out, const response_t *res);

#endif
