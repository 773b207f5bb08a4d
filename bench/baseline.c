/* bench/baseline.c — the bare physical limit for the pool benchmark: a minimal
 * pre-forked libfcgi + libpq program serving GET /healthz and
 * GET /api/v1/regions/{code} the way itpmd does, with nothing else around it.
 * Usage: baseline SOCKET_PATH WORKERS CONNINFO */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcgiapp.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WORKERS 256
#define REGION_PREFIX "/api/v1/regions/"
#define REGION_SQL                                                      \
    "SELECT r.code, r.name, r.kind, r.parent, u.code, u.name, u.kind "  \
    "FROM regions r LEFT JOIN units u ON u.region = r.code "            \
    "WHERE r.code = $1 ORDER BY u.code"

typedef struct {
    char data[16384];
    size_t len;
    int overflow;
} body_t;

static void body_add(body_t *b, const char *s, size_t n)
{
    if (b->overflow || n > sizeof(b->data) - b->len) {
        b->overflow = 1;
        return;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void body_puts(body_t *b, const char *s)
{
    body_add(b, s, strlen(s));
}

/* Attribute-safe XML escaping: the daemon escapes, so the baseline does too. */
static void body_escaped(body_t *b, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        default: continue;
        }
        body_add(b, run, (size_t)(s - run));
        body_puts(b, rep);
        run = s + 1;
    }
    body_add(b, run, (size_t)(s - run));
}

static void body_attr(body_t *b, const char *name, const char *value)
{
    body_puts(b, " ");
    body_puts(b, name);
    body_puts(b, "=\"");
    body_escaped(b, value);
    body_puts(b, "\"");
}

static void reply(FCGX_Request *req, const char *status, const char *type,
                  const char *body, size_t len)
{
    const char *rid = FCGX_GetParam("HTTP_X_REQUEST_ID", req->envp);
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "Status: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "%s%s%s\r\n",
                     status, type, len, rid ? "X-Request-Id: " : "",
                     rid ? rid : "", rid ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(head))
        n = snprintf(head, sizeof(head), "Status: %s\r\n\r\n", status);
    FCGX_PutStr(head, n, req->out);
    FCGX_PutStr(body, (int)len, req->out);
}

static void reply_problem(FCGX_Request *req, int status, const char *title)
{
    char status_line[64], body[512];
    snprintf(status_line, sizeof(status_line), "%d %s", status, title);
    int n = snprintf(body, sizeof(body),
                     "<problem xmlns=\"urn:ietf:rfc:7807\"><type>about:blank</type>"
                     "<title>%s</title><status>%d</status></problem>",
                     title, status);
    reply(req, status_line, "application/problem+xml", body, (size_t)n);
}

static int prepared; /* this worker's statement exists on its connection */

static int db_prepare(PGconn *db)
{
    PGresult *res = PQprepare(db, "region", REGION_SQL, 1, NULL);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "baseline: prepare: %s", PQerrorMessage(db));
    PQclear(res);
    prepared = ok;
    return ok ? 0 : -1;
}

static PGconn *db_connect(const char *conninfo)
{
    PGconn *db = PQconnectdb(conninfo);
    if (PQstatus(db) != CONNECTION_OK) {
        fprintf(stderr, "baseline: connect: %s", PQerrorMessage(db));
        return db;
    }
    db_prepare(db);
    return db;
}

static int code_valid(const char *code)
{
    size_t n = strlen(code);
    if (n == 0 || n > 32)
        return 0;
    return strspn(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "0123456789-_") == n;
}

static void serve_region(FCGX_Request *req, PGconn *db, const char *code)
{
    if (!code_valid(code)) {
        reply_problem(req, 404, "Not Found");
        return;
    }
    if (PQstatus(db) != CONNECTION_OK || !prepared) {
        if (PQstatus(db) != CONNECTION_OK)
            PQreset(db);
        if (PQstatus(db) != CONNECTION_OK || db_prepare(db) < 0) {
            reply_problem(req, 503, "Service Unavailable");
            return;
        }
    }
    const char *params[1] = {code};
    PGresult *res = PQexecPrepared(db, "region", 1, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "baseline: query: %s", PQerrorMessage(db));
        PQclear(res);
        if (PQstatus(db) != CONNECTION_OK)
            prepared = 0; /* reconnect and re-prepare next time */
        reply_problem(req, 503, "Service Unavailable");
        return;
    }
    int rows = PQntuples(res);
    if (rows == 0) {
        PQclear(res);
        reply_problem(req, 404, "Not Found");
        return;
    }
    static body_t b;
    b.len = 0;
    b.overflow = 0;
    body_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<region xmlns=\"urn:itpm:1\"");
    body_attr(&b, "code", PQgetvalue(res, 0, 0));
    body_attr(&b, "name", PQgetvalue(res, 0, 1));
    body_attr(&b, "kind", PQgetvalue(res, 0, 2));
    if (!PQgetisnull(res, 0, 3))
        body_attr(&b, "parent", PQgetvalue(res, 0, 3));
    body_puts(&b, "><units>");
    for (int i = 0; i < rows; i++) {
        if (PQgetisnull(res, i, 4))
            continue;
        body_puts(&b, "<unit");
        body_attr(&b, "code", PQgetvalue(res, i, 4));
        body_attr(&b, "name", PQgetvalue(res, i, 5));
        body_attr(&b, "kind", PQgetvalue(res, i, 6));
        body_puts(&b, "/>");
    }
    body_puts(&b, "</units></region>\n");
    PQclear(res);
    if (b.overflow)
        reply_problem(req, 500, "Internal Server Error");
    else
        reply(req, "200 OK", "application/xml", b.data, b.len);
}

static void worker_run(int listen_fd, const char *conninfo)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    PGconn *db = db_connect(conninfo);
    FCGX_Request req;
    FCGX_InitRequest(&req, listen_fd, 0);
    while (FCGX_Accept_r(&req) >= 0) {
        const char *method = FCGX_GetParam("REQUEST_METHOD", req.envp);
        const char *uri = FCGX_GetParam("DOCUMENT_URI", req.envp);
        if (!uri)
            uri = FCGX_GetParam("SCRIPT_NAME", req.envp);
        if (!method || !uri || strcmp(method, "GET") != 0)
            reply_problem(&req, 405, "Method Not Allowed");
        else if (strcmp(uri, "/healthz") == 0)
            reply(&req, "200 OK", "text/plain", "ok\n", 3);
        else if (strncmp(uri, REGION_PREFIX, strlen(REGION_PREFIX)) == 0)
            serve_region(&req, db, uri + strlen(REGION_PREFIX));
        else
            reply_problem(&req, 404, "Not Found");
        FCGX_Finish_r(&req);
    }
    PQfinish(db);
    _exit(0);
}

static pid_t worker_spawn(int listen_fd, const char *conninfo, const sigset_t *old)
{
    pid_t pid = fork();
    if (pid < 0) {
        perror("baseline: fork");
    } else if (pid == 0) {
        sigprocmask(SIG_SETMASK, old, NULL);
        worker_run(listen_fd, conninfo);
    }
    return pid;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s SOCKET_PATH WORKERS CONNINFO\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    const char *conninfo = argv[3];
    int nworkers = atoi(argv[2]);
    if (nworkers < 1 || nworkers > MAX_WORKERS) {
        fprintf(stderr, "baseline: WORKERS must be 1..%d\n", MAX_WORKERS);
        return 2;
    }
    if (FCGX_Init() != 0) {
        fprintf(stderr, "baseline: FCGX_Init failed\n");
        return 1;
    }
    unlink(path);
    int listen_fd = FCGX_OpenSocket(path, 511);
    if (listen_fd < 0) {
        fprintf(stderr, "baseline: cannot listen on %s\n", path);
        return 1;
    }
    chmod(path, 0666); /* nginx workers may run as another user */

    /* The parent only waits for signals: TERM/INT stop, CHLD respawns. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);

    pid_t workers[MAX_WORKERS];
    for (int i = 0; i < nworkers; i++)
        workers[i] = worker_spawn(listen_fd, conninfo, &old);

    for (;;) {
        int sig = sigwaitinfo(&set, NULL);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        pid_t pid;
        int status;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < nworkers; i++) {
                if (workers[i] != pid)
                    continue;
                fprintf(stderr, "baseline: worker %d exited (status %d), respawning\n",
                        (int)pid, status);
                sleep(1); /* no tight loop if workers die at once */
                workers[i] = worker_spawn(listen_fd, conninfo, &old);
            }
        }
    }
    for (int i = 0; i < nworkers; i++)
        if (workers[i] > 0)
            kill(workers[i], SIGTERM);
    while (wait(NULL) > 0 || errno == EINTR)
        ;
    unlink(path);
    return 0;
}
