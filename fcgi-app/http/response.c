/* Response assembly and the HTTP reason phrases. */
#include "http/response.h"

#include "core/log.h"

#include <string.h>

void response_init(response_t *res)
{
    memset(res, 0, sizeof *res);
    res->status = 200;
}

void response_header(response_t *res, const char *name, const char *value)
{
    if (res->nheaders >= RESPONSE_MAX_HEADERS) {
        log_error("response header %s dropped: too many headers", name);
        return;
    }
    res->headers[res->nheaders].name = name;
    res->headers[res->nheaders].value = value;
    res->nheaders++;
}

void response_body(response_t *res, int status, const char *content_type, const char *body,
                   size_t len)
{
    res->status = status;
    res->content_type = content_type;
    res->body = body;
    res->body_len = len;
}

const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}
