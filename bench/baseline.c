/* bench/baseline.c — the bare physical limit for the pool and lifecycle
 * benchmarks: a minimal pre-forked libfcgi + libpq program serving
 * GET /healthz and GET /api/v1/regions/{code} the way itpmd does, and for
 * the lifecycle benchmark GET /bench/project/{code} (one keyed read of the
 * project row) and POST /bench/tx/{code} (BEGIN; UPDATE; INSERT; COMMIT in
 * one pipeline), with nothing else around it. The /bench routes need a role
 * that bypasses row-level security (the lifecycle bench connects as postgres).
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
#define PROJECT_PREFIX "/bench/project/"
#define TX_PREFIX "/bench/tx/"
#define PROJECT_SQL "SELECT * FROM projects WHERE code = $1"
#define TX_UPDATE_SQL \
    "UPDATE projects SET version = version + 1 WHERE code = $1 RETURNING version"
#define TX_INSERT_SQL                                                                \
    "INSERT INTO project_events (project_id, actor, role, action, from_stage, to_stage) " \
    "SELECT id, 'bench', 'reviewer', 'defer', stage, stage FROM projects WHERE code = $1"

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

static int prepared;       /* this worker's region statement exists on its connection */
static int bench_prepared; /* and the /bench ones (they need projects) */

static int prepare_one(PGconn *db, const char *name, const char *sql, int nparams)
{
    PGresult *res = PQprepare(db, name, sql, nparams, NULL);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "baseline: prepare %s: %s", name, PQerrorMessage(db));
    PQclear(res);
    return ok;
}

static int db_prepare(PGconn *db)
{
    /* All or nothing: a second attempt must not trip over the first's. */
    PQclear(PQexec(db, "DEALLOCATE ALL"));
    prepared = prepare_one(db, "region", REGION_SQL, 1);
    bench_prepared = prepare_one(db, "project", PROJECT_SQL, 1) &&
                     prepare_one(db, "tx_begin", "BEGIN", 0) &&
                     prepare_one(db, "tx_update", TX_UPDATE_SQL, 1) &&
                     prepare_one(db, "tx_insert", TX_INSERT_SQL, 1) &&
                     prepare_one(db, "tx_commit", "COMMIT", 0);
    return prepared ? 0 : -1;
}

/* The connection is up and the statements exist, else 503 is sent. */
static int db_ready(FCGX_Request *req, PGconn *db, int need_bench)
{
    if (PQstatus(db) != CONNECTION_OK || !prepared || (need_bench && !bench_prepared)) {
        if (PQstatus(db) != CONNECTION_OK)
            PQreset(db);
        if (PQstatus(db) != CONNECTION_OK || db_prepare(db) < 0 ||
            (need_bench && !bench_prepared)) {
            reply_problem(req, 503, "Service Unavailable");
            return 0;
        }
    }
    return 1;
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

static int project_code_valid(const char *code)
{
    return strlen(code) == 17 && strspn(code, "0123456789-") == 17;
}

/* One keyed read of the project row; every non-null column an attribute. */
static void serve_project(FCGX_Request *req, PGconn *db, const char *code)
{
    if (!project_code_valid(code)) {
        reply_problem(req, 404, "Not Found");
        return;
    }
    if (!db_ready(req, db, 1))
        return;
    const char *params[1] = {code};
    PGresult *res = PQexecPrepared(db, "project", 1, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "baseline: query: %s", PQerrorMessage(db));
        PQclear(res);
        reply_problem(req, 503, "Service Unavailable");
        return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        reply_problem(req, 404, "Not Found");
        return;
    }
    static body_t b;
    b.len = 0;
    b.overflow = 0;
    body_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<project xmlns=\"urn:itpm:1\"");
    for (int i = 0; i < PQnfields(res); i++)
        if (!PQgetisnull(res, 0, i))
            body_attr(&b, PQfname(res, i), PQgetvalue(res, 0, i));
    body_puts(&b, "/>\n");
    PQclear(res);
    if (b.overflow)
        reply_problem(req, 500, "Internal Server Error");
    else
        reply(req, "200 OK", "application/xml", b.data, b.len);
}

/* BEGIN; UPDATE; INSERT; COMMIT: one pipeline, one round trip, as itpmd
 * sends its transactions. Answers the new version in ETag. */
static void serve_tx(FCGX_Request *req, PGconn *db, const char *code)
{
    char drain[4096];
    while (FCGX_GetStr(drain, sizeof drain, req->in) > 0)
        ;
    if (!project_code_valid(code)) {
        reply_problem(req, 404, "Not Found");
        return;
    }
    if (!db_ready(req, db, 1))
        return;
    const char *params[1] = {code};
    static const char *const names[4] = {"tx_begin", "tx_update", "tx_insert", "tx_commit"};
    static const int nparams[4] = {0, 1, 1, 0};
    int sent = PQenterPipelineMode(db) == 1;
    for (int i = 0; sent && i < 4; i++)
        sent = PQsendQueryPrepared(db, names[i], nparams[i], nparams[i] ? params : NULL, NULL,
                                   NULL, 0) == 1;
    sent = sent && PQpipelineSync(db) == 1;
    if (!sent) {
        fprintf(stderr, "baseline: send: %s", PQerrorMessage(db));
        PQreset(db);
        prepared = bench_prepared = 0;
        reply_problem(req, 503, "Service Unavailable");
        return;
    }
    int ok = 1, rows = 0;
    char version[16] = "";
    for (int i = 0; i < 4; i++) {
        PGresult *r;
        while ((r = PQgetResult(db)) != NULL) {
            ExecStatusType st = PQresultStatus(r);
            if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                if (ok)
                    fprintf(stderr, "baseline: tx: %s", PQresultErrorMessage(r));
                ok = 0;
            } else if (i == 1 && st == PGRES_TUPLES_OK && PQntuples(r) == 1) {
                rows = 1;
                snprintf(version, sizeof version, "%s", PQgetvalue(r, 0, 0));
            }
            PQclear(r);
        }
    }
    PGresult *sync = PQgetResult(db);
    if (sync == NULL || PQresultStatus(sync) != PGRES_PIPELINE_SYNC)
        ok = 0;
    PQclear(sync);
    if (PQexitPipelineMode(db) != 1) {
        PQreset(db);
        prepared = bench_prepared = 0;
        ok = 0;
    } else if (PQtransactionStatus(db) != PQTRANS_IDLE) {
        PQclear(PQexec(db, "ROLLBACK"));
    }
    if (!ok) {
        reply_problem(req, 503, "Service Unavailable");
        return;
    }
    if (!rows) {
        reply_problem(req, 404, "Not Found");
        return;
    }
    char body[256], head[512];
    int n = snprintf(body, sizeof body,
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<project xmlns=\"urn:itpm:1\" code=\"%s\" version=\"%s\"/>\n",
                     code, version);
    const char *rid = FCGX_GetParam("HTTP_X_REQUEST_ID", req->envp);
    int h = snprintf(head, sizeof head,
                     "Status: 200 OK\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n"
                     "ETag: \"%s\"\r\n%s%s%s\r\n",
                     n, version, rid ? "X-Request-Id: " : "", rid ? rid : "", rid ? "\r\n" : "");
    FCGX_PutStr(head, h, req->out);
    FCGX_PutStr(body, n, req->out);
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
        if (method && uri && strcmp(method, "POST") == 0 &&
            strncmp(uri, TX_PREFIX, strlen(TX_PREFIX)) == 0)
            serve_tx(&req, db, uri + strlen(TX_PREFIX));
        else if (!method || !uri || strcmp(method, "GET") != 0)
            reply_problem(&req, 405, "Method Not Allowed");
        else if (strcmp(uri, "/healthz") == 0)
            reply(&req, "200 OK", "text/plain", "ok\n", 3);
        else if (strncmp(uri, REGION_PREFIX, strlen(REGION_PREFIX)) == 0)
            serve_region(&req, db, uri + strlen(REGION_PREFIX));
        else if (strncmp(uri, PROJECT_PREFIX, strlen(PROJECT_PREFIX)) == 0)
            serve_project(&req, db, uri + strlen(PROJECT_PREFIX));
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
