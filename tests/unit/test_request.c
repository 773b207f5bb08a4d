/* Unit tests for request.c: url_decode golden vectors, query and header
 * look-ups, and request_init from FastCGI parameter arrays (request id,
 * request line, Content-Length). */
#include "http/request.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static int setup_arena(void **state)
{
    *state = arena_create(4096);
    return 0;
}

static int teardown_arena(void **state)
{
    arena_destroy(*state);
    return 0;
}

static const char *decode(arena_t *a, const char *s, int plus_is_space)
{
    return url_decode(a, s, strlen(s), plus_is_space);
}

/* ---- url_decode ---- */

static void test_url_decode_golden(void **state)
{
    arena_t *a = *state;
    assert_string_equal(decode(a, "", 0), "");
    assert_string_equal(decode(a, "abc", 0), "abc");
    assert_string_equal(decode(a, "%41", 0), "A");
    assert_string_equal(decode(a, "%4a%4A", 0), "JJ");
    assert_string_equal(decode(a, "x%20y", 0), "x y");
    assert_string_equal(decode(a, "%E4%B8%AD%E6%96%87", 0), "\xe4\xb8\xad\xe6\x96\x87");
    assert_string_equal(decode(a, "%2B", 0), "+");
    assert_string_equal(decode(a, "%2B", 1), "+");
    assert_string_equal(decode(a, "%25", 0), "%");
    assert_string_equal(decode(a, "%2F", 0), "/");
}

static void test_url_decode_plus(void **state)
{
    arena_t *a = *state;
    assert_string_equal(decode(a, "a+b", 1), "a b");
    assert_string_equal(decode(a, "a+b", 0), "a+b");
    assert_string_equal(decode(a, "++", 1), "  ");
}

static void test_url_decode_refuses_bad_escapes(void **state)
{
    arena_t *a = *state;
    assert_null(decode(a, "%4", 0));
    assert_null(decode(a, "%", 0));
    assert_null(decode(a, "abc%", 0));
    assert_null(decode(a, "abc%4", 1));
    assert_null(decode(a, "%zz", 0));
    assert_null(decode(a, "%g1", 0));
    assert_null(decode(a, "%1g", 0));
    assert_null(decode(a, "% 1", 0));
    assert_null(decode(a, "%00", 0));
    assert_null(decode(a, "a%00b", 1));
}

static void test_url_decode_reads_only_n_bytes(void **state)
{
    arena_t *a = *state;
    assert_string_equal(url_decode(a, "%41BC", 3, 0), "A");
    /* The escape is cut by n: a truncated escape, even though the string goes on. */
    assert_null(url_decode(a, "%41", 2, 0));
    assert_string_equal(url_decode(a, "abc", 0, 0), "");
}

/* ---- request_query ---- */

static const char *query(arena_t *a, const char *q, const char *name)
{
    request_t r;
    memset(&r, 0, sizeof r);
    r.arena = a;
    r.query = q;
    return request_query(&r, name);
}

static void test_query_lookup(void **state)
{
    arena_t *a = *state;
    const char *q = "a=1&b=x%20y&c";
    assert_string_equal(query(a, q, "a"), "1");
    assert_string_equal(query(a, q, "b"), "x y");
    assert_string_equal(query(a, q, "c"), "");
    assert_null(query(a, q, "d"));
    assert_null(query(a, q, "A"));
    assert_string_equal(query(a, "b=x+y", "b"), "x y");
    assert_string_equal(query(a, "b=a%2Bb", "b"), "a+b");
    assert_string_equal(query(a, "e=", "e"), "");
    assert_string_equal(query(a, "k=a=b", "k"), "a=b");
}

static void test_query_matches_whole_names_only(void **state)
{
    arena_t *a = *state;
    assert_null(query(a, "ab=1", "a"));
    assert_null(query(a, "a=1", "ab"));
    assert_string_equal(query(a, "ab=1&a=2", "a"), "2");
}

static void test_query_edge_cases(void **state)
{
    arena_t *a = *state;
    assert_null(query(a, "", "a"));
    assert_string_equal(query(a, "&&a=1&", "a"), "1");
    assert_string_equal(query(a, "a=1&a=2", "a"), "1"); /* first one wins */
}

/* ---- request_header ---- */

static const char *header(char **envp, const char *name)
{
    request_t r;
    memset(&r, 0, sizeof r);
    r.envp = envp;
    return request_header(&r, name);
}

static void test_header_lookup(void **state)
{
    (void)state;
    char *envp[] = {"REQUEST_METHOD=GET", "HTTP_X_CSRF_TOKEN_OLD=old", "HTTP_X_CSRF_TOKEN=abc",
                    "HTTP_ORIGIN=https://example.org", "HTTP_EMPTY=", NULL};
    assert_string_equal(header(envp, "X-CSRF-Token"), "abc");
    assert_string_equal(header(envp, "x-csrf-token"), "abc");
    assert_string_equal(header(envp, "X-Csrf-Token-Old"), "old");
    assert_string_equal(header(envp, "Origin"), "https://example.org");
    assert_string_equal(header(envp, "Empty"), "");
    assert_null(header(envp, "X-CSRF"));
    assert_null(header(envp, "Cookie"));
    /* Only HTTP_ variables are headers. */
    assert_null(header(envp, "Request-Method"));
}

static void test_header_name_too_long_is_absent(void **state)
{
    (void)state;
    char name[300];
    memset(name, 'A', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    char var[400];
    snprintf(var, sizeof var, "HTTP_%s=v", name);
    char *envp[] = {var, NULL};
    assert_null(header(envp, name));
    /* The longest name that fits the 128-byte key buffer still works. */
    name[122] = '\0';
    snprintf(var, sizeof var, "HTTP_%s=v", name);
    assert_string_equal(header(envp, name), "v");
}

/* ---- request_disposition_filename ---- */

static const char *disposition(arena_t *a, const char *value)
{
    static char var[512];
    snprintf(var, sizeof var, "HTTP_CONTENT_DISPOSITION=%s", value);
    char *envp[] = {var, NULL};
    request_t r;
    memset(&r, 0, sizeof r);
    r.envp = envp;
    r.arena = a;
    return request_disposition_filename(&r);
}

static void test_disposition_filename(void **state)
{
    arena_t *a = *state;
    assert_string_equal(disposition(a, "attachment; filename=\"plan.pdf\""), "plan.pdf");
    assert_string_equal(disposition(a, "attachment;filename=plan.pdf"), "plan.pdf");
    assert_string_equal(disposition(a, "attachment; FileName = plan.pdf ; size=3"), "plan.pdf");
    assert_string_equal(disposition(a, "attachment; filename=\"a \\\"b\\\" c.pdf\""),
                        "a \"b\" c.pdf");
    assert_string_equal(disposition(a, "attachment; filename=\"a;b.pdf\"; x=1"), "a;b.pdf");
    /* The extended form wins wherever it stands. */
    assert_string_equal(disposition(a, "attachment; filename=\"plan.pdf\"; "
                                       "filename*=UTF-8''%E6%96%B9%E6%A1%88.pdf"),
                        "\xe6\x96\xb9\xe6\xa1\x88.pdf");
    assert_string_equal(disposition(a, "attachment; filename*=utf-8'zh'x%20y.pdf"), "x y.pdf");
    /* Another charset is not read; the plain name is used then. */
    assert_string_equal(disposition(a, "attachment; filename*=ISO-8859-1''a.pdf; filename=b.pdf"),
                        "b.pdf");
    assert_null(disposition(a, "attachment; filename*=UTF-8''%zz.pdf"));
    assert_null(disposition(a, "attachment; filename=\"open.pdf"));
    assert_null(disposition(a, "attachment"));
    assert_null(disposition(a, "inline; name=x"));
    /* A parameter without a value does not swallow the next one. */
    assert_string_equal(disposition(a, "attachment; foo; filename=a.pdf"), "a.pdf");
    assert_null(disposition(a, "attachment; filename"));
}

/* ---- request_init ---- */

typedef struct {
    arena_t *arena;
    request_t req;
    response_t res;
} init_t;

static int init(init_t *t, char **envp)
{
    response_init(&t->res);
    return request_init(&t->req, t->arena, NULL, envp, &t->res);
}

static void assert_generated_id(const char *id)
{
    assert_int_equal(strlen(id), 32);
    for (int i = 0; i < 32; i++)
        assert_non_null(strchr("0123456789abcdef", id[i]));
}

static void assert_problem(const response_t *res, int status)
{
    char want[64];
    assert_int_equal(res->status, status);
    assert_string_equal(res->content_type, "application/problem+xml");
    assert_non_null(res->body);
    snprintf(want, sizeof want, "<status>%d</status>", status);
    assert_non_null(strstr(res->body, want));
}

static void test_init_fills_fields(void **state)
{
    init_t t = {.arena = *state};
    char *envp[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/api/v1/session?x=1&y=2",
                    "REMOTE_ADDR=192.0.2.7", "CONTENT_TYPE=application/xml",
                    "CONTENT_LENGTH=123", "HTTP_X_REQUEST_ID=abc-123_X.y", NULL};
    assert_int_equal(init(&t, envp), 0);
    assert_string_equal(t.req.method, "POST");
    assert_string_equal(t.req.uri, "/api/v1/session?x=1&y=2");
    assert_string_equal(t.req.path, "/api/v1/session");
    assert_string_equal(t.req.query, "x=1&y=2");
    assert_string_equal(t.req.remote_addr, "192.0.2.7");
    assert_string_equal(t.req.content_type, "application/xml");
    assert_int_equal(t.req.content_length, 123);
    assert_string_equal(t.req.request_id, "abc-123_X.y");
    assert_string_equal(t.req.user_id, "-");
    assert_ptr_equal(t.req.arena, t.arena);
    assert_int_equal(t.req.nparams, 0);
    assert_null(t.req.user);
}

static void test_init_defaults(void **state)
{
    init_t t = {.arena = *state};
    char *envp[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/healthz", NULL};
    assert_int_equal(init(&t, envp), 0);
    assert_string_equal(t.req.path, "/healthz");
    assert_string_equal(t.req.query, "");
    assert_string_equal(t.req.remote_addr, "-");
    assert_null(t.req.content_type);
    assert_int_equal(t.req.content_length, -1);
    assert_generated_id(t.req.request_id);

    char *empty_query[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/healthz?", "CONTENT_LENGTH=", NULL};
    assert_int_equal(init(&t, empty_query), 0);
    assert_string_equal(t.req.path, "/healthz");
    assert_string_equal(t.req.query, "");
    assert_int_equal(t.req.content_length, -1);
}

static void test_init_request_id(void **state)
{
    init_t t = {.arena = *state};
    char id64[64 + 32], id65[65 + 32], id100[100 + 32];
    memset(id64, 'a', sizeof id64);
    memset(id65, 'a', sizeof id65);
    memset(id100, 'a', sizeof id100);
    memcpy(id64, "HTTP_X_REQUEST_ID=", 18);
    memcpy(id65, "HTTP_X_REQUEST_ID=", 18);
    memcpy(id100, "HTTP_X_REQUEST_ID=", 18);
    id64[18 + 64] = '\0';
    id65[18 + 65] = '\0';
    id100[18 + 100] = '\0';

    /* The longest id accepted is REQUEST_ID_MAX characters. */
    char *envp64[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/", id64, NULL};
    assert_int_equal(init(&t, envp64), 0);
    assert_string_equal(t.req.request_id, id64 + 18);

    char *refused[] = {id65,
                       id100,
                       "HTTP_X_REQUEST_ID=",
                       "HTTP_X_REQUEST_ID=has space",
                       "HTTP_X_REQUEST_ID=semi;colon",
                       "HTTP_X_REQUEST_ID=new\nline",
                       "HTTP_X_REQUEST_ID=caf\xc3\xa9",
                       "HTTP_X_REQUEST_ID=a\"b"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char *envp[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/", refused[i], NULL};
        assert_int_equal(init(&t, envp), 0);
        assert_generated_id(t.req.request_id);
    }
}

static void test_init_generated_ids_differ(void **state)
{
    init_t t = {.arena = *state};
    char *envp[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/", NULL};
    char first[REQUEST_ID_MAX + 1];
    assert_int_equal(init(&t, envp), 0);
    memcpy(first, t.req.request_id, sizeof first);
    assert_int_equal(init(&t, envp), 0);
    assert_string_not_equal(first, t.req.request_id);
}

static void test_init_refuses_incomplete_request_line(void **state)
{
    init_t t = {.arena = *state};
    char *no_method[] = {"REQUEST_URI=/healthz", "HTTP_X_REQUEST_ID=rid-1", NULL};
    assert_int_equal(init(&t, no_method), -1);
    assert_problem(&t.res, 400);
    /* Enough is filled in for the request log line. */
    assert_string_equal(t.req.method, "-");
    assert_string_equal(t.req.path, "/healthz");
    assert_string_equal(t.req.request_id, "rid-1");

    char *empty_method[] = {"REQUEST_METHOD=", "REQUEST_URI=/healthz", NULL};
    assert_int_equal(init(&t, empty_method), -1);
    assert_problem(&t.res, 400);

    char *no_uri[] = {"REQUEST_METHOD=GET", NULL};
    assert_int_equal(init(&t, no_uri), -1);
    assert_problem(&t.res, 400);
    assert_string_equal(t.req.path, "-");

    char *relative_uri[] = {"REQUEST_METHOD=GET", "REQUEST_URI=healthz", NULL};
    assert_int_equal(init(&t, relative_uri), -1);
    assert_problem(&t.res, 400);

    char *nothing[] = {NULL};
    assert_int_equal(init(&t, nothing), -1);
    assert_problem(&t.res, 400);
}

static void test_init_refuses_bad_content_length(void **state)
{
    init_t t = {.arena = *state};
    static char *bad[] = {"CONTENT_LENGTH=abc", "CONTENT_LENGTH=12x", "CONTENT_LENGTH=-1",
                          "CONTENT_LENGTH=+5", "CONTENT_LENGTH= 5", "CONTENT_LENGTH=0x10",
                          "CONTENT_LENGTH=99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *envp[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/x", bad[i], NULL};
        assert_int_equal(init(&t, envp), -1);
        assert_problem(&t.res, 400);
        assert_non_null(strstr(t.res.body, "Content-Length"));
    }
    char *zero[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/x", "CONTENT_LENGTH=0", NULL};
    assert_int_equal(init(&t, zero), 0);
    assert_int_equal(t.req.content_length, 0);
    char *big[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/x", "CONTENT_LENGTH=9223372036854775807",
                   NULL};
    assert_int_equal(init(&t, big), 0);
    assert_int_equal(t.req.content_length, 9223372036854775807LL);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_arena, teardown_arena)
    const struct CMUnitTest tests[] = {
        T(test_url_decode_golden),
        T(test_url_decode_plus),
        T(test_url_decode_refuses_bad_escapes),
        T(test_url_decode_reads_only_n_bytes),
        T(test_query_lookup),
        T(test_query_matches_whole_names_only),
        T(test_query_edge_cases),
        T(test_header_lookup),
        T(test_header_name_too_long_is_absent),
        T(test_disposition_filename),
        T(test_init_fills_fields),
        T(test_init_defaults),
        T(test_init_request_id),
        T(test_init_generated_ids_differ),
        T(test_init_refuses_incomplete_request_line),
        T(test_init_refuses_bad_content_length),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
