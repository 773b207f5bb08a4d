/* FastCGI parameters to request fields; the body read; the response write. */
#include "http/request.h"

#include "core/log.h"
#include "http/problem.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static int request_id_valid(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= REQUEST_ID_MAX || !(isalnum(c) || c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return n > 0;
}

static void request_id_make(char *out)
{
    unsigned char raw[16];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        /* Only uniqueness matters for a request id; fall back to time and pid. */
        snprintf(out, REQUEST_ID_MAX + 1, "%lx-%x", (unsigned long)time(NULL), (unsigned)getpid());
        return;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof raw; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * sizeof raw] = '\0';
}

int request_init(request_t *r, arena_t *a, FCGX_Stream *in, FCGX_ParamArray envp, response_t *res)
{
    memset(r, 0, sizeof *r);
    r->arena = a;
    r->in = in;
    r->envp = envp;
    r->user_id = "-";
    r->content_length = -1;
    const char *rid = FCGX_GetParam("HTTP_X_REQUEST_ID", envp);
    if (rid != NULL && request_id_valid(rid))
        memcpy(r->request_id, rid, strlen(rid) + 1);
    else
        request_id_make(r->request_id);
    r->method = FCGX_GetParam("REQUEST_METHOD", envp);
    r->uri = FCGX_GetParam("REQUEST_URI", envp);
    r->remote_addr = FCGX_GetParam("REMOTE_ADDR", envp);
    r->content_type = FCGX_GetParam("CONTENT_TYPE", envp);
    if (r->remote_addr == NULL)
        r->remote_addr = "-";
    if (r->method == NULL || r->method[0] == '\0' || r->uri == NULL || r->uri[0] != '/') {
        r->method = r->method ? r->method : "-";
        r->path = r->uri ? r->uri : "-";
        r->query = "";
        problem_simple(a, res, 400, "the request line is incomplete", NULL);
        return -1;
    }
    const char *q = strchr(r->uri, '?');
    if (q != NULL) {
        r->path = arena_strndup(a, r->uri, (size_t)(q - r->uri));
        r->query = q + 1;
    } else {
        r->path = r->uri;
        r->query = "";
    }
    if (url_decode(a, r->query, strlen(r->query), 1) == NULL) {
        problem_simple(a, res, 400, "the query string has a bad percent-escape", NULL);
        return -1;
    }
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", envp);
    if (cl != NULL && cl[0] != '\0') {
        char *end;
        errno = 0;
        long long n = strtoll(cl, &end, 10);
        if (errno != 0 || *end != '\0' || n < 0 || !isdigit((unsigned char)cl[0])) {
            problem_simple(a, res, 400, "Content-Length is not a number", NULL);
            return -1;
        }
        r->content_length = n;
    }
    return 0;
}

const char *request_header(const request_t *r, const char *name)
{
    char key[128] = "HTTP_";
    size_t n = strlen(name);
    if (n + 6 > sizeof key)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        key[5 + i] = (char)(c == '-' ? '_' : toupper(c));
    }
    key[5 + n] = '\0';
    return FCGX_GetParam(key, r->envp);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* A quoted-string's content without its escapes; *end is set past the
 * closing quote. NULL when it is not closed. */
static char *unquote(arena_t *a, const char *v, const char **end)
{
    size_t n = 0;
    const char *p = v + 1;
    char *out = arena_alloc(a, strlen(v));
    for (; *p != '\0' && *p != '"'; p++) {
        if (*p == '\\' && p[1] != '\0')
            p++;
        out[n++] = *p;
    }
    if (*p != '"')
        return NULL;
    out[n] = '\0';
    *end = p + 1;
    return out;
}

const char *request_disposition_filename(const request_t *r)
{
    const char *h = request_header(r, "Content-Disposition");
    const char *plain = NULL;
    for (const char *p = h != NULL ? strchr(h, ';') : NULL; p != NULL; p = strchr(p, ';')) {
        const char *key = skip_ws(p + 1);
        const char *eq = key + strcspn(key, "=;");
        if (*eq != '=') {
            p = eq;
            continue;
        }
        size_t klen = (size_t)(eq - key);
        while (klen > 0 && (key[klen - 1] == ' ' || key[klen - 1] == '\t'))
            klen--;
        const char *v = skip_ws(eq + 1);
        const char *end = v + strcspn(v, ";");
        char *value;
        if (*v == '"') {
            value = unquote(r->arena, v, &end);
            if (value == NULL)
                return NULL;
        } else {
            size_t vlen = (size_t)(end - v);
            while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            value = arena_strndup(r->arena, v, vlen);
        }
        if (klen == 9 && strncasecmp(key, "filename*", 9) == 0 &&
            strncasecmp(value, "UTF-8'", 6) == 0) {
            const char *q = strchr(value + 6, '\'');
            if (q != NULL)
                return url_decode(r->arena, q + 1, strlen(q + 1), 0);
        } else if (klen == 8 && strncasecmp(key, "filename", 8) == 0 && plain == NULL) {
            plain = value;
        }
        p = end;
    }
    return plain;
}

char *url_decode(arena_t *a, const char *s, size_t n, int plus_is_space)
{
    char *out = arena_alloc(a, n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return NULL;
            int h = hexval((unsigned char)s[i + 1]), l = hexval((unsigned char)s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0))
                return NULL;
            out[j++] = (char)(h * 16 + l);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out[j++] = ' ';
        } else {
            out[j++] = c;
        }
    }
    out[j] = '\0';
    return out;
}

const char *request_query(const request_t *r, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = r->query;
    while (*p != '\0') {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        if (klen == nlen && memcmp(p, name, nlen) == 0) {
            if (eq == NULL)
                return "";
            return url_decode(r->arena, eq + 1, len - klen - 1, 1);
        }
        if (amp == NULL)
            break;
        p = amp + 1;
    }
    return NULL;
}

int request_require_type(request_t *r, response_t *res, const char *const *accepted)
{
    const char *ct = r->content_type;
    if (ct != NULL) {
        size_t n = strcspn(ct, ";");
        while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
            n--;
        for (const char *const *t = accepted; *t != NULL; t++)
            if (strlen(*t) == n && strncasecmp(ct, *t, n) == 0)
                return 0;
    }
    problem_simple(r->arena, res, 415,
                   arena_printf(r->arena, "this resource takes %s", accepted[0]), NULL);
    return -1;
}

int request_read_body(request_t *r, response_t *res)
{
    long long limit = r->conf->max_body;
    if (r->content_length > limit) {
        problem_simple(r->arena, res, 413,
                       arena_printf(r->arena, "the body is larger than %lld bytes", limit), NULL);
        return -1;
    }
    size_t cap = r->content_length >= 0 ? (size_t)r->content_length : 8192;
    char *buf = arena_alloc(r->arena, cap + 1);
    size_t len = 0;
    for (;;) {
        if (len == cap) {
            if (r->content_length >= 0)
                break;
            if ((long long)cap >= limit) {
                problem_simple(r->arena, res, 413,
                               arena_printf(r->arena, "the body is larger than %lld bytes", limit),
                               NULL);
                return -1;
            }
            size_t ncap = cap * 2 > (size_t)limit ? (size_t)limit : cap * 2;
            char *nbuf = arena_alloc(r->arena, ncap + 1);
            memcpy(nbuf, buf, len);
            buf = nbuf;
            cap = ncap;
        }
        int got = FCGX_GetStr(buf + len, (int)(cap - len > 65536 ? 65536 : cap - len), r->in);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    if (r->content_length >= 0 && (long long)len != r->content_length) {
        problem_simple(r->arena, res, 400, "the body is shorter than Content-Length", NULL);
        return -1;
    }
    buf[len] = '\0';
    r->body = buf;
    r->body_len = len;
    return 0;
}

static int put(FCGX_Stream *out, const char *s, size_t n)
{
    while (n > 0) {
        int chunk = n > 65536 ? 65536 : (int)n;
        if (FCGX_PutStr(s, chunk, out) != chunk)
            return -1;
        s += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

/* The FastCGI head of an answer into head: status, request id, content
 * type (when there is one), length (when known: length >= 0), res's own
 * headers and the blank line. Its length, or -1 when it does not fit. */
static int format_head(const request_t *r, const response_t *res, int status,
                       const char *content_type, long long length, char *head, size_t size)
{
    int n = snprintf(head, size, "Status: %d %s\r\nX-Request-Id: %s\r\n", status,
                     http_reason(status), r->request_id);
    if (content_type != NULL && n > 0 && (size_t)n < size)
        n += snprintf(head + n, size - (size_t)n, "Content-Type: %s\r\n", content_type);
    if (length >= 0 && n > 0 && (size_t)n < size)
        n += snprintf(head + n, size - (size_t)n, "Content-Length: %lld\r\n", length);
    for (int i = 0; i < res->nheaders && n > 0 && (size_t)n < size; i++)
        n += snprintf(head + n, size - (size_t)n, "%s: %s\r\n", res->headers[i].name,
                      res->headers[i].value);
    if (n > 0 && (size_t)n < size)
        n += snprintf(head + n, size - (size_t)n, "\r\n");
    if (n < 0 || (size_t)n >= size) {
        log_error("rid=%s response head longer than %zu bytes", r->request_id, size);
        return -1;
    }
    return n;
}

int request_stream_head(request_t *r, response_t *res, int status, const char *content_type)
{
    char head[4096];
    int n = format_head(r, res, status, content_type, -1, head, sizeof head);
    /* Nothing sent when it does not fit: the caller's answer can still be a
     * problem. */
    if (n < 0)
        return -1;
    res->status = status;
    res->content_type = content_type;
    res->streamed = 1;
    return request_write(r, head, (size_t)n);
}

int request_write(request_t *r, const char *buf, size_t len)
{
    return put(r->out, buf, len);
}

int request_send(request_t *r, FCGX_Stream *out, const response_t *res)
{
    if (res->streamed)
        return 0;
    char head[4096];
    int n = format_head(r, res, res->status, res->content_type, (long long)res->body_len, head,
                        sizeof head);
    if (n < 0)
        return -1;
    int head_only = strcmp(r->method, "HEAD") == 0;
    /* No flush here: FCGX_Finish_r sends the buffered response and the end of
     * the request together. */
    if (put(out, head, (size_t)n) < 0 ||
        (!head_only && res->body_len > 0 && put(out, res->body, res->body_len) < 0)) {
        log_warn("rid=%s client went away while the response was written", r->request_id);
        return -1;
    }
    return 0;
}
