/* Unit tests for scoreboard.c: slot claim and release, per-class request
 * counters, histogram buckets, busy and live counts, and the Prometheus
 * text it renders (well-formed, cumulative buckets, -1 when it won't fit). */
#include "pool/scoreboard.h"

#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define RENDER_MAX 16384

static int setup(void **state)
{
    scoreboard_t *sb = scoreboard_create();
    if (sb == NULL)
        return -1;
    *state = sb;
    return 0;
}

static int teardown(void **state)
{
    scoreboard_destroy(*state);
    return 0;
}

static char *render(const scoreboard_t *sb)
{
    static char buf[RENDER_MAX];
    int n = scoreboard_render(sb, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(strlen(buf), (size_t)n);
    return buf;
}

/* The value of the sample line that starts with "series " ("name" or
 * "name{labels}"); fails when there is none. */
static const char *sample(const char *text, const char *series)
{
    static char value[64];
    size_t n = strlen(series);
    for (const char *p = text; *p != '\0';) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > n && strncmp(p, series, n) == 0 && p[n] == ' ') {
            snprintf(value, sizeof value, "%.*s", (int)(len - n - 1), p + n + 1);
            return value;
        }
        p += len + (eol != NULL);
    }
    fail_msg("no sample %s in:\n%s", series, text);
    return NULL;
}

static void test_create_is_empty(void **state)
{
    scoreboard_t *sb = *state;
    assert_int_equal(scoreboard_live_count(sb), 0);
    assert_int_equal(scoreboard_busy_count(sb), 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(atomic_load(&sb->requests[i]), 0);
    for (int i = 0; i < SB_MAX_SLOTS; i++)
        assert_int_equal(atomic_load(&sb->slots[i].pid), 0);
}

static void test_slot_claim_and_release(void **state)
{
    scoreboard_t *sb = *state;
    assert_int_equal(scoreboard_slot_claim(sb), 0);
    assert_int_equal(scoreboard_slot_claim(sb), 1);
    assert_int_equal(scoreboard_slot_claim(sb), 2);
    /* Reserved but pid unknown yet: not live. */
    assert_int_equal(atomic_load(&sb->slots[1].pid), -1);
    assert_int_equal(scoreboard_live_count(sb), 0);
    atomic_store(&sb->slots[0].pid, 1000);
    atomic_store(&sb->slots[1].pid, 1001);
    assert_int_equal(scoreboard_live_count(sb), 2);

    scoreboard_slot_release(sb, 1);
    assert_int_equal(atomic_load(&sb->slots[1].pid), 0);
    assert_int_equal(scoreboard_live_count(sb), 1);
    /* The lowest free slot is taken again, reset. */
    atomic_store(&sb->slots[1].requests, 99);
    atomic_store(&sb->slots[1].busy, 1);
    assert_int_equal(scoreboard_slot_claim(sb), 1);
    assert_int_equal(atomic_load(&sb->slots[1].requests), 0);
    assert_int_equal(atomic_load(&sb->slots[1].busy), 0);
    assert_int_equal(scoreboard_slot_claim(sb), 3);
}

static void test_slot_claim_when_full(void **state)
{
    scoreboard_t *sb = *state;
    for (int i = 0; i < SB_MAX_SLOTS; i++)
        assert_int_equal(scoreboard_slot_claim(sb), i);
    assert_int_equal(scoreboard_slot_claim(sb), -1);
    scoreboard_slot_release(sb, 200);
    assert_int_equal(scoreboard_slot_claim(sb), 200);
    assert_int_equal(scoreboard_slot_claim(sb), -1);
}

static void test_begin_end_busy(void **state)
{
    scoreboard_t *sb = *state;
    int a = scoreboard_slot_claim(sb), b = scoreboard_slot_claim(sb);
    atomic_store(&sb->slots[a].pid, 2000);
    atomic_store(&sb->slots[b].pid, 2001);

    int64_t before = monotonic_ms();
    scoreboard_request_begin(sb, a);
    assert_int_equal(scoreboard_busy_count(sb), 1);
    assert_true(atomic_load(&sb->slots[a].busy_since) >= before);
    scoreboard_request_begin(sb, b);
    assert_int_equal(scoreboard_busy_count(sb), 2);
    assert_string_equal(sample(render(sb), "itpm_busy_workers"), "2");

    scoreboard_request_end(sb, a, 200, 1500);
    assert_int_equal(scoreboard_busy_count(sb), 1);
    assert_int_equal(atomic_load(&sb->slots[a].requests), 1);
    assert_int_equal(atomic_load(&sb->slots[b].requests), 0);

    /* A busy slot whose pid is not known yet is not counted. */
    int c = scoreboard_slot_claim(sb);
    scoreboard_request_begin(sb, c);
    assert_int_equal(scoreboard_busy_count(sb), 1);

    scoreboard_slot_release(sb, b);
    assert_int_equal(scoreboard_busy_count(sb), 0);
    assert_string_equal(sample(render(sb), "itpm_busy_workers"), "0");
    assert_string_equal(sample(render(sb), "itpm_workers"), "1");
}

static void test_counters_by_class(void **state)
{
    scoreboard_t *sb = *state;
    int s = scoreboard_slot_claim(sb);
    static const int statuses[] = {200, 201, 204, 302, 101, 404, 400, 401, 500, 503, 504, 0, 600};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        scoreboard_request_begin(sb, s);
        scoreboard_request_end(sb, s, statuses[i], 100);
    }
    assert_int_equal(atomic_load(&sb->requests[0]), 2);
    assert_int_equal(atomic_load(&sb->requests[1]), 1);
    assert_int_equal(atomic_load(&sb->requests[2]), 3);
    assert_int_equal(atomic_load(&sb->requests[3]), 1);
    assert_int_equal(atomic_load(&sb->requests[4]), 3);
    assert_int_equal(atomic_load(&sb->requests[5]), 3);
    assert_int_equal(atomic_load(&sb->slots[s].requests), 13);

    const char *text = render(sb);
    assert_string_equal(sample(text, "itpm_requests_total{class=\"1xx\"}"), "1");
    assert_string_equal(sample(text, "itpm_requests_total{class=\"2xx\"}"), "3");
    assert_string_equal(sample(text, "itpm_requests_total{class=\"3xx\"}"), "1");
    assert_string_equal(sample(text, "itpm_requests_total{class=\"4xx\"}"), "3");
    assert_string_equal(sample(text, "itpm_requests_total{class=\"5xx\"}"), "3");
    assert_string_equal(sample(text, "itpm_errors_total"), "3");
}

static void test_histogram_buckets(void **state)
{
    scoreboard_t *sb = *state;
    int s = scoreboard_slot_claim(sb);
    /* Bounds are inclusive (le): 1000 us lands in le="0.001". */
    static const int64_t durations_us[] = {500, 1000, 1001, 7000, 10000000, 20000000, -5};
    for (size_t i = 0; i < sizeof durations_us / sizeof durations_us[0]; i++)
        scoreboard_request_end(sb, s, 200, durations_us[i]);

    assert_int_equal(atomic_load(&sb->duration_buckets[0]), 3); /* 500, 1000, -5 */
    assert_int_equal(atomic_load(&sb->duration_buckets[1]), 1); /* 1001 */
    assert_int_equal(atomic_load(&sb->duration_buckets[3]), 1); /* 7000: le 0.01 */
    assert_int_equal(atomic_load(&sb->duration_buckets[12]), 1); /* 10 s: le 10 */
    assert_int_equal(atomic_load(&sb->duration_buckets[13]), 1); /* 20 s: +Inf */

    const char *text = render(sb);
    static const struct {
        const char *le;
        const char *count;
    } cumulative[] = {
        {"0.001", "3"}, {"0.0025", "4"}, {"0.005", "4"}, {"0.01", "5"}, {"0.025", "5"},
        {"0.05", "5"},  {"0.1", "5"},    {"0.25", "5"},  {"0.5", "5"},  {"1", "5"},
        {"2.5", "5"},   {"5", "5"},      {"10", "6"},    {"+Inf", "7"},
    };
    assert_int_equal(sizeof cumulative / sizeof cumulative[0], SB_BUCKETS);
    char series[96];
    for (size_t i = 0; i < SB_BUCKETS; i++) {
        snprintf(series, sizeof series, "itpm_request_duration_seconds_bucket{le=\"%s\"}",
                 cumulative[i].le);
        assert_string_equal(sample(text, series), cumulative[i].count);
    }
    assert_string_equal(sample(text, "itpm_request_duration_seconds_count"), "7");
    /* 500 + 1000 + 1001 + 7000 + 10e6 + 20e6 us; a negative duration adds 0. */
    assert_string_equal(sample(text, "itpm_request_duration_seconds_sum"), "30.009501");
}

static void test_render_is_prometheus_text(void **state)
{
    scoreboard_t *sb = *state;
    int s = scoreboard_slot_claim(sb);
    atomic_store(&sb->slots[s].pid, 4242);
    atomic_store(&sb->workers_configured, 4);
    atomic_store(&sb->respawns, 2);
    scoreboard_request_end(sb, s, 404, 3000);

    const char *text = render(sb);
    regex_t sample_re, help_re, type_re;
    assert_int_equal(regcomp(&sample_re,
                             "^([a-zA-Z_:][a-zA-Z0-9_:]*)"
                             "(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"\\\\\n]*\""
                             "(,[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"\\\\\n]*\")*\\})?"
                             " (-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|[-+]Inf|NaN)$",
                             REG_EXTENDED),
                     0);
    assert_int_equal(regcomp(&help_re, "^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) [^\n]+$", REG_EXTENDED),
                     0);
    assert_int_equal(regcomp(&type_re,
                             "^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$",
                             REG_EXTENDED),
                     0);

    assert_true(strlen(text) > 0);
    assert_int_equal(text[strlen(text) - 1], '\n');
    char typed[32][80];
    int ntyped = 0, nsamples = 0;
    const char *p = text;
    while (*p != '\0') {
        const char *eol = strchr(p, '\n');
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(eol - p), p);
        regmatch_t m[2];
        if (regexec(&type_re, line, 2, m, 0) == 0) {
            assert_true(ntyped < 32);
            snprintf(typed[ntyped++], sizeof typed[0], "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
                     line + m[1].rm_so);
        } else if (regexec(&help_re, line, 0, NULL, 0) == 0) {
            /* a HELP line */
        } else if (regexec(&sample_re, line, 2, m, 0) == 0) {
            /* Every sample belongs to a family declared before it. */
            char name[80];
            snprintf(name, sizeof name, "%.*s", (int)(m[1].rm_eo - m[1].rm_so), line + m[1].rm_so);
            int declared = 0;
            for (int i = 0; i < ntyped && !declared; i++) {
                size_t n = strlen(typed[i]);
                declared = strcmp(name, typed[i]) == 0 ||
                           (strncmp(name, typed[i], n) == 0 &&
                            (strcmp(name + n, "_bucket") == 0 || strcmp(name + n, "_sum") == 0 ||
                             strcmp(name + n, "_count") == 0));
            }
            if (!declared)
                fail_msg("sample of an undeclared family: %s", line);
            nsamples++;
        } else {
            fail_msg("not a Prometheus text line: \"%s\"", line);
        }
        p = eol + 1;
    }
    assert_true(nsamples >= 5 + SB_BUCKETS + 2);
    regfree(&sample_re);
    regfree(&help_re);
    regfree(&type_re);

    assert_string_equal(sample(text, "itpm_workers"), "1");
    assert_string_equal(sample(text, "itpm_workers_configured"), "4");
    assert_string_equal(sample(text, "itpm_respawns_total"), "2");
    assert_string_equal(sample(text, "itpm_timeouts_total"), "0");
}

static void test_render_too_small(void **state)
{
    scoreboard_t *sb = *state;
    char full[RENDER_MAX];
    int len = scoreboard_render(sb, full, sizeof full);
    assert_true(len > 0);

    /* Every size short of len + 1 (the text and its NUL) is refused, and
     * nothing is written past the size given. */
    static const size_t sizes[] = {0, 1, 2, 64, 100};
    char *buf = malloc((size_t)len + 64);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0] + 2; i++) {
        size_t size = i < sizeof sizes / sizeof sizes[0] ? sizes[i]
                      : i == sizeof sizes / sizeof sizes[0] ? (size_t)len / 2
                                                            : (size_t)len;
        memset(buf, '#', (size_t)len + 64);
        assert_int_equal(scoreboard_render(sb, buf, size), -1);
        for (size_t j = size; j < (size_t)len + 64; j++)
            assert_int_equal(buf[j], '#');
    }
    assert_int_equal(scoreboard_render(sb, buf, (size_t)len + 1), len);
    assert_string_equal(buf, full);
    free(buf);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_create_is_empty),
        T(test_slot_claim_and_release),
        T(test_slot_claim_when_full),
        T(test_begin_end_busy),
        T(test_counters_by_class),
        T(test_histogram_buckets),
        T(test_render_is_prometheus_text),
        T(test_render_too_small),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
