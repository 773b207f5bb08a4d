/* Shared-memory scoreboard and its Prometheus rendering. */
#include "pool/scoreboard.h"

#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

const double sb_bucket_bounds[SB_BUCKETS - 1] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                 0.25,  0.5,    1.0,   2.5,  5.0,   10.0};

int64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t monotonic_ms(void)
{
    return monotonic_us() / 1000;
}

scoreboard_t *scoreboard_create(void)
{
    void *p = mmap(NULL, sizeof(scoreboard_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) {
        log_error("scoreboard: mmap: %s", strerror(errno));
        return NULL;
    }
    memset(p, 0, sizeof(scoreboard_t));
    return p;
}

void scoreboard_destroy(scoreboard_t *sb)
{
    if (sb != NULL)
        munmap(sb, sizeof *sb);
}

int scoreboard_slot_claim(scoreboard_t *sb)
{
    for (int i = 0; i < SB_MAX_SLOTS; i++) {
        int expected = 0;
        /* -1 marks a slot reserved by the master before the child's pid is known. */
        if (atomic_compare_exchange_strong(&sb->slots[i].pid, &expected, -1)) {
            atomic_store(&sb->slots[i].busy, 0);
            atomic_store(&sb->slots[i].requests, 0);
            atomic_store(&sb->slots[i].busy_since, 0);
            return i;
        }
    }
    return -1;
}

void scoreboard_slot_release(scoreboard_t *sb, int slot)
{
    atomic_store(&sb->slots[slot].busy, 0);
    atomic_store(&sb->slots[slot].pid, 0);
}

void scoreboard_request_begin(scoreboard_t *sb, int slot)
{
    atomic_store(&sb->slots[slot].timeout_s, 0);
    atomic_store(&sb->slots[slot].busy_since, monotonic_ms());
    atomic_store(&sb->slots[slot].busy, 1);
}

void scoreboard_request_timeout(scoreboard_t *sb, int slot, int seconds)
{
    atomic_store(&sb->slots[slot].timeout_s, seconds);
}

void scoreboard_request_end(scoreboard_t *sb, int slot, int status, int64_t duration_us)
{
    int cls = status / 100;
    atomic_fetch_add(&sb->requests[(cls >= 1 && cls <= 5) ? cls : 0], 1);
    double seconds = (double)duration_us / 1e6;
    int b = 0;
    while (b < SB_BUCKETS - 1 && seconds > sb_bucket_bounds[b])
        b++;
    atomic_fetch_add(&sb->duration_buckets[b], 1);
    atomic_fetch_add(&sb->duration_us_sum, (uint64_t)(duration_us > 0 ? duration_us : 0));
    atomic_fetch_add(&sb->slots[slot].requests, 1);
    atomic_store(&sb->slots[slot].busy, 0);
}

int scoreboard_busy_count(const scoreboard_t *sb)
{
    int n = 0;
    for (int i = 0; i < SB_MAX_SLOTS; i++)
        if (atomic_load(&sb->slots[i].pid) > 0 && atomic_load(&sb->slots[i].busy))
            n++;
    return n;
}

int scoreboard_live_count(const scoreboard_t *sb)
{
    int n = 0;
    for (int i = 0; i < SB_MAX_SLOTS; i++)
        if (atomic_load(&sb->slots[i].pid) > 0)
            n++;
    return n;
}

typedef struct {
    char *buf;
    size_t size;
    size_t len;
    int overflow;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out_t *o, const char *fmt, ...)
{
    if (o->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->size - o->len) {
        o->overflow = 1;
        return;
    }
    o->len += (size_t)n;
}

int scoreboard_render(const scoreboard_t *sb, char *buf, size_t size)
{
    out_t o = {buf, size, 0, 0};
    static const char *const classes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    put(&o, "# HELP itpm_requests_total Requests served by the pool, by status class.\n"
            "# TYPE itpm_requests_total counter\n");
    for (int i = 1; i <= 5; i++)
        put(&o, "itpm_requests_total{class=\"%s\"} %llu\n", classes[i],
            (unsigned long long)atomic_load(&sb->requests[i]));
    uint64_t errors = atomic_load(&sb->requests[5]);
    put(&o, "# HELP itpm_errors_total Requests answered with a 5xx status.\n"
            "# TYPE itpm_errors_total counter\nitpm_errors_total %llu\n",
        (unsigned long long)errors);
    put(&o, "# HELP itpm_workers Worker processes alive.\n# TYPE itpm_workers gauge\n"
            "itpm_workers %d\n",
        scoreboard_live_count(sb));
    put(&o, "# HELP itpm_workers_configured Worker processes the configuration asks for.\n"
            "# TYPE itpm_workers_configured gauge\nitpm_workers_configured %d\n",
        atomic_load(&sb->workers_configured));
    put(&o, "# HELP itpm_busy_workers Workers serving a request now.\n"
            "# TYPE itpm_busy_workers gauge\nitpm_busy_workers %d\n",
        scoreboard_busy_count(sb));
    put(&o, "# HELP itpm_respawns_total Workers replaced after dying unexpectedly or timing out.\n"
            "# TYPE itpm_respawns_total counter\nitpm_respawns_total %llu\n",
        (unsigned long long)atomic_load(&sb->respawns));
    put(&o, "# HELP itpm_timeouts_total Workers killed for running past request_timeout.\n"
            "# TYPE itpm_timeouts_total counter\nitpm_timeouts_total %llu\n",
        (unsigned long long)atomic_load(&sb->timeouts));
    put(&o, "# HELP itpm_recycles_total Workers replaced after max_requests.\n"
            "# TYPE itpm_recycles_total counter\nitpm_recycles_total %llu\n",
        (unsigned long long)atomic_load(&sb->recycles));
    put(&o, "# HELP itpm_reloads_total Configuration reloads (SIGHUP).\n"
            "# TYPE itpm_reloads_total counter\nitpm_reloads_total %llu\n",
        (unsigned long long)atomic_load(&sb->reloads));
    put(&o, "# HELP itpm_request_duration_seconds Time from accept to response.\n"
            "# TYPE itpm_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int b = 0; b < SB_BUCKETS; b++) {
        cum += atomic_load(&sb->duration_buckets[b]);
        if (b < SB_BUCKETS - 1)
            put(&o, "itpm_request_duration_seconds_bucket{le=\"%g\"} %llu\n", sb_bucket_bounds[b],
                (unsigned long long)cum);
        else
            put(&o, "itpm_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)cum);
    }
    uint64_t sum_us = atomic_load(&sb->duration_us_sum);
    put(&o, "itpm_request_duration_seconds_sum %llu.%06llu\n",
        (unsigned long long)(sum_us / 1000000), (unsigned long long)(sum_us % 1000000));
    put(&o, "itpm_request_duration_seconds_count %llu\n", (unsigned long long)cum);
    return o.overflow ? -1 : (int)o.len;
}
