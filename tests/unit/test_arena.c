/* Unit tests for arena.c: alignment, chunks larger than the chunk size,
 * cleanups at reset (newest first), the string helpers, and that a reset
 * gives every chunk but the first back. */
#include "core/arena.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define ALIGN _Alignof(max_align_t)

static void test_alloc_is_aligned_and_disjoint(void **state)
{
    (void)state;
    arena_t *a = arena_create(256);
    static const size_t sizes[] = {1, 3, 7, 8, 15, 16, 17, 31, 100, 1};
    unsigned char *p[sizeof sizes / sizeof sizes[0]];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        p[i] = arena_alloc(a, sizes[i]);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % ALIGN, 0);
        memset(p[i], (int)i + 1, sizes[i]);
    }
    /* Each block still holds its own fill: no two blocks overlap. */
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t j = 0; j < sizes[i]; j++)
            assert_int_equal(p[i][j], (unsigned char)(i + 1));
    arena_destroy(a);
}

static void test_large_allocation_gets_its_own_chunk(void **state)
{
    (void)state;
    arena_t *a = arena_create(1024);
    assert_int_equal(arena_extra_bytes(a), 0);
    unsigned char *small = arena_alloc(a, 10);
    assert_int_equal(arena_extra_bytes(a), 0);
    unsigned char *big = arena_alloc(a, 100000);
    assert_non_null(big);
    assert_int_equal((uintptr_t)big % ALIGN, 0);
    assert_true(arena_extra_bytes(a) >= 100000);
    memset(big, 0xab, 100000); /* the whole block is writable (ASan checks it) */
    memset(small, 0xcd, 10);
    unsigned char *after = arena_alloc(a, 10);
    assert_non_null(after);
    memset(after, 0xef, 10);
    assert_int_equal(big[0], 0xab);
    assert_int_equal(big[99999], 0xab);
    assert_int_equal(small[9], 0xcd);
    arena_destroy(a);
}

static void test_reset_gives_back_extra_bytes_and_reuses_first_chunk(void **state)
{
    (void)state;
    arena_t *a = arena_create(512);
    void *first = arena_alloc(a, 8);
    for (int i = 0; i < 100; i++)
        arena_alloc(a, 200);
    arena_alloc(a, 5000);
    assert_true(arena_extra_bytes(a) > 0);
    arena_reset(a);
    assert_int_equal(arena_extra_bytes(a), 0);
    /* The first chunk is kept and allocation starts over at its beginning. */
    assert_ptr_equal(arena_alloc(a, 8), first);
    arena_reset(a);
    assert_int_equal(arena_extra_bytes(a), 0);
    arena_destroy(a);
}

static void test_zero_chunk_size_still_allocates(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    char *s = arena_strdup(a, "hello");
    assert_string_equal(s, "hello");
    assert_true(arena_extra_bytes(a) > 0);
    arena_reset(a);
    assert_int_equal(arena_extra_bytes(a), 0);
    arena_destroy(a);
}

static void test_calloc_zeroes_reused_memory(void **state)
{
    (void)state;
    arena_t *a = arena_create(256);
    memset(arena_alloc(a, 64), 0xff, 64);
    arena_reset(a);
    unsigned char *z = arena_calloc(a, 64);
    for (int i = 0; i < 64; i++)
        assert_int_equal(z[i], 0);
    arena_destroy(a);
}

typedef struct {
    int order[8];
    int n;
} trace_t;

static trace_t *trace_current;

static void record(void *data) { trace_current->order[trace_current->n++] = *(int *)data; }

static void test_reset_runs_cleanups_newest_first_once(void **state)
{
    (void)state;
    trace_t t = {{0}, 0};
    trace_current = &t;
    static int ids[] = {1, 2, 3};
    arena_t *a = arena_create(128);
    for (int i = 0; i < 3; i++) {
        arena_on_reset(a, record, &ids[i]);
        arena_alloc(a, 100); /* cleanups registered across chunks */
    }
    arena_reset(a);
    assert_int_equal(t.n, 3);
    assert_int_equal(t.order[0], 3);
    assert_int_equal(t.order[1], 2);
    assert_int_equal(t.order[2], 1);
    arena_reset(a); /* already run: not again */
    assert_int_equal(t.n, 3);
    arena_on_reset(a, record, &ids[0]);
    arena_destroy(a); /* destroy runs what is pending */
    assert_int_equal(t.n, 4);
    assert_int_equal(t.order[3], 1);
}

static void test_strdup_strndup(void **state)
{
    (void)state;
    arena_t *a = arena_create(64);
    const char *src = "hello";
    char *s = arena_strdup(a, src);
    assert_ptr_not_equal(s, src);
    assert_string_equal(s, "hello");
    assert_string_equal(arena_strdup(a, ""), "");
    assert_string_equal(arena_strndup(a, "abcdef", 3), "abc");
    assert_string_equal(arena_strndup(a, "abcdef", 0), "");
    /* strndup copies exactly n bytes: embedded data after n is not read. */
    char buf[4] = {'x', 'y', 'z', 'w'};
    assert_string_equal(arena_strndup(a, buf, 4), "xyzw");
    arena_destroy(a);
}

static void test_printf(void **state)
{
    (void)state;
    arena_t *a = arena_create(64);
    assert_string_equal(arena_printf(a, "%d-%s-%c", 42, "x", 'y'), "42-x-y");
    assert_string_equal(arena_printf(a, "%s", ""), "");
    /* Longer than the chunk: formatted into its own chunk, in full. */
    char *long_text = arena_printf(a, "%0500d|%s", 7, "end");
    assert_int_equal(strlen(long_text), 504);
    assert_int_equal(long_text[0], '0');
    assert_string_equal(long_text + 499, "7|end");
    arena_destroy(a);
}

/* Regression: a size so close to SIZE_MAX that adding the chunk header
 * wraps around made chunk_new() malloc 16 bytes and write its header past
 * them; it must abort like any other impossible allocation. */
static void test_alloc_near_size_max_aborts(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        arena_t *a = arena_create(64);
        char *p = arena_alloc(a, SIZE_MAX - 31);
        p[0] = 'x';
        _exit(p != NULL ? 0 : 3);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("arena_alloc(SIZE_MAX - 31) did not abort: the child %s %d",
                 WIFSIGNALED(status) ? "died of signal" : "exited with",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_is_aligned_and_disjoint),
        cmocka_unit_test(test_large_allocation_gets_its_own_chunk),
        cmocka_unit_test(test_reset_gives_back_extra_bytes_and_reuses_first_chunk),
        cmocka_unit_test(test_zero_chunk_size_still_allocates),
        cmocka_unit_test(test_calloc_zeroes_reused_memory),
        cmocka_unit_test(test_reset_runs_cleanups_newest_first_once),
        cmocka_unit_test(test_strdup_strndup),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_alloc_near_size_max_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
