/* What a handler answers: status, content type, extra headers and a body
 * that lives in the request arena. Sent once by the worker. */
#ifndef ITPM_RESPONSE_H
#define ITPM_RESPONSE_H

#include <stddef.h>

#define RESPONSE_MAX_HEADERS 16

typedef struct {
    const char *name;
    const char *value;
} header_t;

typedef struct {
    int status;
    const char *content_type;
    header_t headers[RESPONSE_MAX_HEADERS];
    int nheaders;
    const char *body;
    size_t body_len;
    int streamed; /* the handler wrote the response itself (request_stream_head) */
} response_t;

void response_init(response_t *res);
/* Adds a header; name and value must outlive the response (arena or static). */
void response_header(response_t *res, const char *name, const char *value);
void response_body(response_t *res, int status, const char *content_type, const char *body,
                   size_t len);
const char *http_reason(int status);

#endif
