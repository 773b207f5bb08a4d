/* The worker's accept loop, per-request arena, request log line.
 *
 * Graceful stop without races: the SIGTERM handler dup2()s an unbound socket
 * over the listening descriptor. A worker blocked in accept() then fails at
 * once; one serving a request finishes it and fails at its next accept. */
#include "worker.h"

#include "app.h"
#include "log.h"
#include "problem.h"
#include "request.h"

#include <errno.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reopen_requested;
static int listen_fd_global = -1;
static int dummy_fd = -1;

static void on_term(int sig)
{
    (void)sig;
    int saved = errno;
    stop_requested = 1;
    if (dummy_fd >= 0 && listen_fd_global >= 0)
        dup2(dummy_fd, listen_fd_global);
    errno = saved;
}

static void on_usr1(int sig)
{
    (void)sig;
    reopen_requested = 1;
}

static int worker_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
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
    sigset_t none;
    sigemptyset(&none);
    return sigprocmask(SIG_SETMASK, &none, NULL);
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
        req.start_us = t0;
        router_dispatch(app_routes, app_nroutes, &req, &res);
    }
    request_send(&req, fr->out, &res);
    int64_t dur = monotonic_us() - t0;
    scoreboard_request_end(app->sb, app->slot, res.status, dur);
    log_line("rid=%s %s %.200s %d %lld.%03lldms pid=%d user=%s", req.request_id, req.method,
             req.path, res.status, (long long)(dur / 1000), (long long)(dur % 1000),
             (int)getpid(), req.user);
}

int worker_run(const conf_t *conf, scoreboard_t *sb, int slot, int listen_fd, pid_t master,
               int max_requests)
{
    /* Die with the master; getppid() closes the race with a master that
     * died before prctl() ran. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != master)
        return 1;
    listen_fd_global = listen_fd;
    dummy_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (dummy_fd < 0 || worker_signals() < 0) {
        log_error("worker setup failed: %s", strerror(errno));
        return 1;
    }
    if (FCGX_Init() != 0) {
        log_error("FCGX_Init failed");
        return 1;
    }
    FCGX_Request fr;
    if (FCGX_InitRequest(&fr, listen_fd, 0) != 0) {
        log_error("FCGX_InitRequest failed");
        return 1;
    }
    app_t app = {.conf = conf, .sb = sb, .db = db_create(conf), .slot = slot};
    arena_t *arena = arena_create(16384);
    int rc = 0;
    long served = 0;
    while (!stop_requested && (max_requests == 0 || served < max_requests)) {
        if (FCGX_Accept_r(&fr) < 0) {
            if (!stop_requested) {
                log_error("accept failed: %s", strerror(errno));
                rc = 1;
            }
            break;
        }
        if (reopen_requested) {
            reopen_requested = 0;
            log_reopen();
        }
        serve(&app, &fr, arena);
        FCGX_Finish_r(&fr);
        arena_reset(arena);
        served++;
    }
    arena_destroy(arena);
    db_destroy(app.db);
    FCGX_Free(&fr, 0);
    close(dummy_fd);
    return rc;
}
