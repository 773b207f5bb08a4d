/* Pool state shared between the master and its workers: one slot per worker
 * (pid, busy since, requests served) and the pool's counters, in an anonymous
 * shared mapping made before the first fork. Fields are C11 atomics, which
 * are lock-free on the targets we build for and so valid across processes. */
#ifndef ITPM_SCOREBOARD_H
#define ITPM_SCOREBOARD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SB_MAX_SLOTS 512
#define SB_BUCKETS 14

typedef struct {
    _Atomic int pid;             /* 0: slot free */
    _Atomic int busy;            /* 1 while a request is being served */
    _Atomic int64_t busy_since;  /* CLOCK_MONOTONIC milliseconds */
    _Atomic uint64_t requests;   /* served by the current process */
    _Atomic uint32_t generation; /* configuration generation it runs */
    _Atomic int timeout_s;       /* this request's own time-out; 0: request_timeout */
} sb_slot_t;

typedef struct {
    _Atomic uint64_t requests[6]; /* [1..5] = status class; [0] = other */
    _Atomic uint64_t respawns;    /* workers replaced after dying unexpectedly */
    _Atomic uint64_t timeouts;    /* workers killed past request_timeout */
    _Atomic uint64_t recycles;    /* workers replaced after max_requests */
    _Atomic uint64_t reloads;
    _Atomic uint64_t duration_buckets[SB_BUCKETS]; /* not cumulative; last = +Inf */
    _Atomic uint64_t duration_us_sum;
    _Atomic int workers_configured;
    sb_slot_t slots[SB_MAX_SLOTS];
} scoreboard_t;

extern const double sb_bucket_bounds[SB_BUCKETS - 1];

scoreboard_t *scoreboard_create(void);
void scoreboard_destroy(scoreboard_t *sb);
int scoreboard_slot_claim(scoreboard_t *sb);
void scoreboard_slot_release(scoreboard_t *sb, int slot);
void scoreboard_request_begin(scoreboard_t *sb, int slot);
/* Gives the slot's current request its own time-out (bulk submissions). */
void scoreboard_request_timeout(scoreboard_t *sb, int slot, int seconds);
void scoreboard_request_end(scoreboard_t *sb, int slot, int status, int64_t duration_us);
int scoreboard_busy_count(const scoreboard_t *sb);
int scoreboard_live_count(const scoreboard_t *sb);
/* Prometheus text exposition into buf; returns the length or -1 if buf is too small. */
int scoreboard_render(const scoreboard_t *sb, char *buf, size_t size);
int64_t monotonic_ms(void);
int64_t monotonic_us(void);

#endif
