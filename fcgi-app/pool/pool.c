/* Master state machine. Signal handlers only write a byte to a self-pipe;
 * the loop below reads it and acts, so no real work runs in a handler.
 *
 *   RUNNING    keep `workers` children of the current generation alive
 *   RELOADING  start one child of the new generation, retire one old child
 *              once the new one is ready, repeat until no old child remains
 *   STOPPING   children were sent SIGTERM; SIGKILL after shutdown_timeout */
#include "pool/pool.h"

#include "core/log.h"
#include "pool/scoreboard.h"
#include "pool/worker.h"
#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#define TICK_MS 100
#define HEALTHY_RUN_MS 10000
#define BACKOFF_MIN_MS 100

typedef enum { POOL_RUNNING, POOL_RELOADING, POOL_STOPPING } pool_state_t;

typedef enum {
    EXIT_EXPECTED_NONE = 0, /* running normally: an exit is unexpected unless 0 */
    EXIT_EXPECTED_RETIRE,   /* we sent SIGTERM (reload, stop, fewer workers) */
    EXIT_EXPECTED_TIMEOUT,  /* we sent SIGKILL past request_timeout */
} exit_expectation_t;

typedef struct {
    pid_t pid;
    int slot;
    unsigned generation;
    int64_t started_ms;
    exit_expectation_t expect;
} child_t;

static struct {
    const char *conf_path;
    conf_t conf;
    int listen_fd;
    scoreboard_t *sb;
    child_t children[SB_MAX_SLOTS];
    int nchildren;
    unsigned generation;
    pool_state_t state;
    int failures;
    int64_t next_spawn_ms;
    int64_t stop_started_ms;
    int killed_all;
    int sigpipe[2];
    pool_prepare_fn prepare;
} M;

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    (void)!write(M.sigpipe[1], &b, 1);
    errno = saved;
}

static int master_signals(void)
{
    if (pipe2(M.sigpipe, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_signal;
    int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGCHLD};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], &sa, NULL) < 0)
            return -1;
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

static int jittered_max_requests(const conf_t *conf)
{
    if (conf->max_requests == 0 || conf->max_requests_jitter == 0)
        return conf->max_requests;
    unsigned r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (unsigned)getpid();
    long span = (long)conf->max_requests * conf->max_requests_jitter / 100;
    long n = conf->max_requests - (span > 0 ? (long)(r % (unsigned long)(span + 1)) : 0);
    return n > 0 ? (int)n : 1;
}

static int spawn(void)
{
    int slot = scoreboard_slot_claim(M.sb);
    if (slot < 0 || M.nchildren >= SB_MAX_SLOTS) {
        log_error("no free scoreboard slot");
        return -1;
    }
    atomic_store(&M.sb->slots[slot].generation, M.generation);
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t master = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* The master's handlers must never run in a child. */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGCHLD};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            sigaction(sigs[i], &sa, NULL);
        close(M.sigpipe[0]);
        close(M.sigpipe[1]);
        atomic_store(&M.sb->slots[slot].pid, (int)getpid());
        int rc = worker_run(&M.conf, M.sb, slot, M.listen_fd, master,
                            jittered_max_requests(&M.conf));
        /* exit(), not _exit(): the leak checker of sanitizer builds runs at exit. */
        exit(rc);
    }
    int saved = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        log_error("fork: %s", strerror(saved));
        scoreboard_slot_release(M.sb, slot);
        return -1;
    }
    atomic_store(&M.sb->slots[slot].pid, (int)pid);
    child_t *c = &M.children[M.nchildren++];
    c->pid = pid;
    c->slot = slot;
    c->generation = M.generation;
    c->started_ms = monotonic_ms();
    c->expect = EXIT_EXPECTED_NONE;
    log_debug("worker %d started in slot %d (generation %u)", (int)pid, slot, M.generation);
    return 0;
}

static void retire(child_t *c)
{
    if (c->expect != EXIT_EXPECTED_NONE)
        return;
    c->expect = EXIT_EXPECTED_RETIRE;
    kill(c->pid, SIGTERM);
}

static int64_t backoff_ms(int failures)
{
    int64_t max = (int64_t)M.conf.respawn_backoff_max * 1000;
    int64_t d = BACKOFF_MIN_MS;
    for (int i = 1; i < failures && d < max; i++)
        d *= 2;
    return d < max ? d : max;
}

static void child_exited(child_t *c, int status)
{
    int64_t now = monotonic_ms();
    scoreboard_slot_release(M.sb, c->slot);
    if (c->expect == EXIT_EXPECTED_RETIRE)
        return;
    if (c->expect == EXIT_EXPECTED_TIMEOUT) {
        atomic_fetch_add(&M.sb->respawns, 1);
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        atomic_fetch_add(&M.sb->recycles, 1);
        return;
    }
    if (WIFSIGNALED(status))
        log_error("worker %d killed by signal %d", (int)c->pid, WTERMSIG(status));
    else
        log_error("worker %d exited with status %d", (int)c->pid, WEXITSTATUS(status));
    atomic_fetch_add(&M.sb->respawns, 1);
    if (now - c->started_ms >= HEALTHY_RUN_MS)
        M.failures = 0;
    M.failures++;
    int64_t delay = M.failures > 1 ? backoff_ms(M.failures - 1) : 0;
    if (M.next_spawn_ms < now + delay)
        M.next_spawn_ms = now + delay;
    if (delay > 0)
        log_warn("respawning in %lld ms (%d failures in a row)", (long long)delay, M.failures);
}

static void reap(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < M.nchildren; i++) {
            if (M.children[i].pid != pid)
                continue;
            child_exited(&M.children[i], status);
            M.children[i] = M.children[--M.nchildren];
            break;
        }
    }
}

static void check_timeouts(void)
{
    int64_t now = monotonic_ms();
    for (int i = 0; i < M.nchildren; i++) {
        child_t *c = &M.children[i];
        sb_slot_t *s = &M.sb->slots[c->slot];
        if (c->expect == EXIT_EXPECTED_TIMEOUT || !atomic_load(&s->busy))
            continue;
        /* A request with its own time-out (a batch) stops itself at that
         * limit; the master steps in only if it does not. */
        int own = atomic_load(&s->timeout_s);
        int seconds = own > 0 ? own + 30 : M.conf.request_timeout;
        if (seconds == 0 || now - atomic_load(&s->busy_since) <= (int64_t)seconds * 1000)
            continue;
        log_error("worker %d busy for more than %d s: killed", (int)c->pid, seconds);
        c->expect = EXIT_EXPECTED_TIMEOUT;
        atomic_fetch_add(&M.sb->timeouts, 1);
        kill(c->pid, SIGKILL);
    }
}

static int count_current(int *old_alive, int *old_active, child_t **newest)
{
    int current = 0;
    *old_alive = *old_active = 0;
    *newest = NULL;
    for (int i = 0; i < M.nchildren; i++) {
        child_t *c = &M.children[i];
        if (c->generation == M.generation) {
            if (c->expect == EXIT_EXPECTED_NONE)
                current++;
            if (*newest == NULL || c->started_ms > (*newest)->started_ms)
                *newest = c;
        } else {
            (*old_alive)++;
            if (c->expect == EXIT_EXPECTED_NONE)
                (*old_active)++;
        }
    }
    return current;
}

static void maintain(void)
{
    int64_t now = monotonic_ms();
    int old_alive, old_active;
    child_t *newest;
    int current = count_current(&old_alive, &old_active, &newest);
    int target = M.conf.workers;

    if (M.state == POOL_RELOADING) {
        if (old_alive == 0) {
            M.state = POOL_RUNNING;
            log_info("reload complete: %d workers of generation %u", current, M.generation);
        } else if (old_alive == old_active) {
            /* No old child is draining: add one new, then retire one old. */
            if (current + old_active <= target) {
                if (now >= M.next_spawn_ms)
                    spawn();
            } else if (newest == NULL || now - newest->started_ms >= TICK_MS) {
                for (int i = 0; i < M.nchildren; i++) {
                    if (M.children[i].generation != M.generation &&
                        M.children[i].expect == EXIT_EXPECTED_NONE) {
                        retire(&M.children[i]);
                        break;
                    }
                }
            }
        }
        return;
    }
    while (current < target && now >= M.next_spawn_ms) {
        if (spawn() < 0) {
            M.next_spawn_ms = now + 1000;
            break;
        }
        current++;
    }
    for (int i = M.nchildren - 1; i >= 0 && current > target; i--) {
        if (M.children[i].expect == EXIT_EXPECTED_NONE) {
            retire(&M.children[i]);
            current--;
        }
    }
}

static void begin_stop(void)
{
    if (M.state == POOL_STOPPING)
        return;
    log_info("stopping: finishing requests in flight");
    M.state = POOL_STOPPING;
    M.stop_started_ms = monotonic_ms();
    for (int i = 0; i < M.nchildren; i++) {
        if (M.children[i].expect == EXIT_EXPECTED_NONE) {
            M.children[i].expect = EXIT_EXPECTED_RETIRE;
            kill(M.children[i].pid, SIGTERM);
        }
    }
}

static void begin_reload(void)
{
    if (M.state == POOL_STOPPING)
        return;
    conf_t fresh;
    char err[1024];
    if (conf_load(M.conf_path, &fresh, err, sizeof err) < 0) {
        log_error("reload refused, configuration unchanged: %s", err);
        return;
    }
    if (M.prepare != NULL && M.prepare(&fresh) < 0) {
        log_error("reload refused, configuration unchanged: see the errors above");
        conf_free(&fresh);
        return;
    }
    if (strcmp(fresh.listen, M.conf.listen) != 0) {
        log_warn("reload: a new listen address needs a restart; keeping %s", M.conf.listen);
        free(fresh.listen);
        fresh.listen = xstrdup(M.conf.listen);
    }
    if (strcmp(fresh.log_file, M.conf.log_file) != 0)
        log_open(fresh.log_file);
    log_set_level((log_level_t)fresh.log_level);
    conf_free(&M.conf);
    M.conf = fresh;
    M.generation++;
    M.failures = 0;
    M.next_spawn_ms = 0;
    atomic_store(&M.sb->workers_configured, M.conf.workers);
    atomic_fetch_add(&M.sb->reloads, 1);
    M.state = POOL_RELOADING;
    log_info("reloading: replacing workers one by one (generation %u)", M.generation);
}

static void forward_signal(int sig)
{
    for (int i = 0; i < M.nchildren; i++)
        kill(M.children[i].pid, sig);
}

static void handle_signals(void)
{
    unsigned char buf[64];
    ssize_t n;
    while ((n = read(M.sigpipe[0], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            switch (buf[i]) {
            case SIGTERM:
            case SIGINT:
            case SIGQUIT:
                begin_stop();
                break;
            case SIGHUP:
                begin_reload();
                break;
            case SIGUSR1:
                log_reopen();
                forward_signal(SIGUSR1);
                break;
            default:
                break;
            }
        }
    }
}

int pool_run(const char *conf_path, conf_t *conf, int listen_fd, pool_prepare_fn prepare)
{
    memset(&M, 0, sizeof M);
    M.prepare = prepare;
    M.conf_path = conf_path;
    M.conf = *conf;
    M.listen_fd = listen_fd;
    M.state = POOL_RUNNING;
    M.sb = scoreboard_create();
    if (M.sb == NULL || master_signals() < 0) {
        log_error("master setup failed: %s", strerror(errno));
        return 1;
    }
    atomic_store(&M.sb->workers_configured, M.conf.workers);
    log_info("itpmd master %d: %d workers on %s", (int)getpid(), M.conf.workers, M.conf.listen);
    for (;;) {
        struct pollfd pfd = {.fd = M.sigpipe[0], .events = POLLIN};
        if (poll(&pfd, 1, TICK_MS) < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            break;
        }
        handle_signals();
        reap();
        if (M.state == POOL_STOPPING) {
            if (M.nchildren == 0)
                break;
            if (!M.killed_all &&
                monotonic_ms() - M.stop_started_ms > (int64_t)M.conf.shutdown_timeout * 1000) {
                log_error("shutdown_timeout reached: killing %d workers", M.nchildren);
                forward_signal(SIGKILL);
                M.killed_all = 1;
            }
            continue;
        }
        check_timeouts();
        maintain();
    }
    log_info("itpmd master %d: stopped", (int)getpid());
    close(M.sigpipe[0]);
    close(M.sigpipe[1]);
    scoreboard_destroy(M.sb);
    *conf = M.conf;
    return 0;
}
