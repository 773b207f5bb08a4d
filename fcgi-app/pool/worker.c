/* The worker's accept loop, per-request arena, request log line.
 *
 * Signals without races: the worker keeps SIGTERM, SIGINT, SIGQUIT and
 * SIGUSR1 blocked at all times and unblocks them only inside ppoll() on the
 * listening socket, so a signal can never land inside libfcgi (whose accept
 * path drops a freshly accepted connection when select() is interrupted) or
 * inside a request. The listening socket is non-blocking: a worker that loses
 * the race for a connection gets EAGAIN and goes back to waiting. */
#include "pool/worker.h"

#include "http/app.h"
#include "auth/auth.h"
#include "core/log.h"
#include "http/problem.h"
#include "http/request.h"

#include <errno.h>
#include <fcgiapp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reopen_requested;

static void on_term(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_usr1(int sig)
{
    (void)sig;
    reopen_requested = 1;
}

/* Installs the handlers and blocks the signals; *waiting receives the mask
 * to use while waiting for a connection. */
static int worker_signals(sigset_t *waiting)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_term;
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
        sigaction(SIGQUIT, &sa, NULL) < 0)
        return -1;
    sa.sa_handler = on_usr1;
    if (sigaction(SIGUSR1, &sa, NULL) < 0)
        return -1;
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0 || sigaction(SIGHUP, &sa, NULL) < 0)
        return -1;
    sa.sa_handler = SIG_DFL;
    if (sigaction(SIGCHLD, &sa, NULL) < 0)
        return -1;
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGQUIT);
    sigaddset(&blocked, SIGUSR1);
    if (sigprocmask(SIG_SETMASK, &blocked, NULL) < 0)
        return -1;
    sigemptyset(waiting);
    return 0;
}

static void serve(app_t *app, FCGX_Request *fr, arena_t *arena)
{
    int64_t t0 = monotonic_us();
    scoreboard_request_begin(app->sb, app->slot);
    request_t req;
    response_t res;
    response_init(&res);
    if (request_init(&req, arena, fr->in, fr->envp, &res) == 0) {
        req.conf = app->conf;
        req.app = app;
        req.out = fr->out;
        req.start_us = t0;
        router_dispatch(app_routes, app_nroutes, &req, &res, auth_guard);
    }
    request_send(&req, fr->out, &res);
    int64_t dur = monotonic_us() - t0;
    scoreboard_request_end(app->sb, app->slot, res.status, dur);
    log_line("rid=%s %s %.200s %d %lld.%03lldms pid=%d user=%s", req.request_id, req.method,
             req.path, res.status, (long long)(dur / 1000), (long long)(dur % 1000), (int)app->pid,
             req.user_id);
}

int worker_run(const conf_t *conf, scoreboard_t *sb, int slot, int listen_fd, pid_t master,
               int max_requests)
{
    sigset_t waiting;
    if (worker_signals(&waiting) < 0) {
        log_error("worker signal setup failed: %s", strerror(errno));
        return 1;
    }
    /* Die with the master; getppid() closes the race with a master that
     * died before prctl() ran. The signal stays pending until ppoll(). */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != master)
        return 1;
    if (FCGX_Init() != 0) {
        log_error("FCGX_Init failed");
        return 1;
    }
    FCGX_Request fr;
    if (FCGX_InitRequest(&fr, listen_fd, 0) != 0) {
        log_error("FCGX_InitRequest failed");
        return 1;
    }
    app_t app = {.conf = conf,
                 .sb = sb,
                 .db = db_create(conf),
                 .dir = ldap_dir_create(conf),
                 .slot = slot,
                 .pid = getpid()};
    arena_t *arena = arena_create(16384);
    int rc = 0;
    long served = 0;
    while (max_requests == 0 || served < max_requests) {
        if (reopen_requested) {
            reopen_requested = 0;
            log_reopen();
        }
        if (stop_requested)
            break;
        /* Under load a connection is usually waiting: try it first and sleep
         * in ppoll() (the only place signals are let in) only when there is
         * none. */
        int got = FCGX_Accept_r(&fr);
        if (got == -EAGAIN || got == -EWOULDBLOCK || got == -ECONNABORTED || got == -EINTR) {
            struct pollfd pfd = {.fd = listen_fd, .events = POLLIN};
            if (ppoll(&pfd, 1, NULL, &waiting) < 0 && errno != EINTR) {
                log_error("ppoll: %s", strerror(errno));
                rc = 1;
                break;
            }
            continue;
        }
        if (got < 0) {
            log_error("accept failed: %s", strerror(-got));
            rc = 1;
            break;
        }
        serve(&app, &fr, arena);
        FCGX_Finish_r(&fr);
        arena_reset(arena);
        served++;
    }
    arena_destroy(arena);
    ldap_dir_destroy(app.dir);
    db_destroy(app.db);
    FCGX_Free(&fr, 0);
    return rc;
}
