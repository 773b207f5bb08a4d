/* bench/ldap_binds.c — the directory's own limit for the identity benchmark:
 * N processes, each with its own connection to slapd, doing simple binds
 * (ldap_sasl_bind_s, the call itpmd makes for a login) in a loop for T
 * seconds, rotating over the DNs given. With -s it does what itpmd asks of
 * the directory per login instead: a search by uid on a second connection
 * bound as the service account, then the bind as the DN found.
 *
 * Usage: ldap_binds [-p PROCS] [-t SECONDS] -y PASSWORD_FILE
 *                   [-s -D SERVICE_DN -Y SERVICE_PASSWORD_FILE -b BASE]
 *                   URI DN...
 * Prints one line of "key value" pairs:
 *   ops N errors E seconds S rate R p50_ms A p99_ms B
 * Exit status 0 when every operation succeeded, 1 otherwise, 2 on misuse. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <ldap.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 256
#define MAX_DNS 256
/* Latency histogram: 10 µs buckets up to 2 s, the last one open-ended. */
#define BUCKET_US 10
#define BUCKETS 200001

typedef struct {
    uint64_t ops;
    uint64_t errors;
    uint32_t hist[BUCKETS];
} tally_t;

static const char *uri, *base, *service_dn;
static char password[1024], service_pw[1024];
static char *dns[MAX_DNS], *uids[MAX_DNS];
static int ndns, search_mode;

static void die(const char *what)
{
    fprintf(stderr, "ldap_binds: %s\n", what);
    exit(2);
}

static void read_secret(const char *path, char *out, size_t outlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "ldap_binds: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    if (fgets(out, (int)outlen, f) == NULL)
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    if (out[0] == '\0')
        die("empty password file (an empty password would be an unauthenticated bind)");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static LDAP *connect_ldap(void)
{
    LDAP *ld = NULL;
    int version = LDAP_VERSION3;
    if (ldap_initialize(&ld, uri) != LDAP_SUCCESS)
        return NULL;
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON);
    return ld;
}

static int bind_as(LDAP *ld, const char *dn, const char *pw)
{
    struct berval cred;
    cred.bv_val = (char *)(uintptr_t)pw;
    cred.bv_len = strlen(pw);
    return ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

/* The first RDN's value of a DN ("uid=rev_city,ou=…" -> "rev_city"). */
static char *rdn_value(const char *dn)
{
    const char *eq = strchr(dn, '='), *end = strchr(dn, ',');
    if (eq == NULL || (end != NULL && end < eq))
        die("a DN must start with attr=value");
    size_t n = end ? (size_t)(end - eq - 1) : strlen(eq + 1);
    return strndup(eq + 1, n);
}

/* One login's directory work (search mode) or one bind; 0 on success. */
static int one_op(LDAP *ld, LDAP *search, int k)
{
    if (!search_mode)
        return bind_as(ld, dns[k], password) == LDAP_SUCCESS ? 0 : -1;
    char filter[512];
    snprintf(filter, sizeof filter, "(&(objectClass=inetOrgPerson)(uid=%s))", uids[k]);
    char *attrs[] = {"cn", "departmentNumber", "l", "memberOf", NULL};
    struct timeval tv = {5, 0};
    LDAPMessage *res = NULL;
    int rc = ldap_search_ext_s(search, base, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL, NULL,
                               &tv, 2, &res);
    int ok = rc == LDAP_SUCCESS && ldap_count_entries(search, res) == 1;
    char *dn = ok ? ldap_get_dn(search, ldap_first_entry(search, res)) : NULL;
    ok = dn != NULL && bind_as(ld, dn, password) == LDAP_SUCCESS;
    ldap_memfree(dn);
    ldap_msgfree(res);
    return ok ? 0 : -1;
}

/* A child: connect, wait for the start byte, loop until the deadline, write
 * the tally to the pipe. */
static void child(int id, int start_fd, int out_fd, double seconds)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    tally_t *t = calloc(1, sizeof *t);
    LDAP *ld = connect_ldap(), *search = NULL;
    if (t == NULL || ld == NULL)
        _exit(3);
    if (search_mode) {
        search = connect_ldap();
        if (search == NULL || bind_as(search, service_dn, service_pw) != LDAP_SUCCESS) {
            fprintf(stderr, "ldap_binds: service bind as %s failed\n", service_dn);
            _exit(3);
        }
    }
    /* Connect before the clock starts: the first bind opens the socket. */
    if (one_op(ld, search, id % ndns) < 0) {
        fprintf(stderr, "ldap_binds: first operation as %s failed\n", dns[id % ndns]);
        _exit(3);
    }
    char go;
    if (read(start_fd, &go, 1) != 1)
        _exit(3);
    double end = now_s() + seconds;
    int k = id % ndns;
    for (;;) {
        double t0 = now_s();
        if (t0 >= end)
            break;
        int rc = one_op(ld, search, k);
        double us = (now_s() - t0) * 1e6;
        size_t b = (size_t)(us / BUCKET_US);
        t->hist[b < BUCKETS ? b : BUCKETS - 1]++;
        if (rc == 0)
            t->ops++;
        else
            t->errors++;
        k = (k + 1) % ndns;
    }
    const char *p = (const char *)t;
    size_t left = sizeof *t;
    while (left > 0) {
        ssize_t n = write(out_fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(3);
        p += n;
        left -= (size_t)n;
    }
    ldap_unbind_ext_s(ld, NULL, NULL);
    if (search != NULL)
        ldap_unbind_ext_s(search, NULL, NULL);
    _exit(0);
}

static int read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static double percentile_ms(const uint32_t *hist, uint64_t total, double q)
{
    uint64_t want = (uint64_t)((double)total * q), seen = 0;
    if (want == 0)
        want = 1;
    for (size_t b = 0; b < BUCKETS; b++) {
        seen += hist[b];
        if (seen >= want)
            return (double)((b + 1) * BUCKET_US) / 1000.0;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int procs = 4, opt;
    double seconds = 10;
    const char *pwfile = NULL, *service_pwfile = NULL;
    while ((opt = getopt(argc, argv, "p:t:y:sD:Y:b:")) != -1) {
        switch (opt) {
        case 'p': procs = atoi(optarg); break;
        case 't': seconds = atof(optarg); break;
        case 'y': pwfile = optarg; break;
        case 's': search_mode = 1; break;
        case 'D': service_dn = optarg; break;
        case 'Y': service_pwfile = optarg; break;
        case 'b': base = optarg; break;
        default: return 2;
        }
    }
    if (optind + 2 > argc || pwfile == NULL || procs < 1 || procs > MAX_PROCS || seconds <= 0 ||
        (search_mode && (service_dn == NULL || service_pwfile == NULL || base == NULL))) {
        fprintf(stderr, "usage: ldap_binds [-p PROCS] [-t SECONDS] -y PASSWORD_FILE "
                        "[-s -D SERVICE_DN -Y SERVICE_PASSWORD_FILE -b BASE] URI DN...\n");
        return 2;
    }
    uri = argv[optind++];
    read_secret(pwfile, password, sizeof password);
    if (search_mode)
        read_secret(service_pwfile, service_pw, sizeof service_pw);
    for (; optind < argc && ndns < MAX_DNS; optind++) {
        dns[ndns] = argv[optind];
        uids[ndns] = rdn_value(argv[optind]);
        ndns++;
    }

    int start[2], out[2];
    if (pipe(start) < 0 || pipe(out) < 0)
        die("pipe failed");
    pid_t pids[MAX_PROCS];
    for (int i = 0; i < procs; i++) {
        pids[i] = fork();
        if (pids[i] < 0)
            die("fork failed");
        if (pids[i] == 0) {
            close(start[1]);
            close(out[0]);
            child(i, start[0], out[1], seconds);
        }
    }
    close(start[0]);
    close(out[1]);
    /* Give every child the time to connect and do its first operation
     * (a child that failed exits; its tally then never arrives). */
    sleep(1);
    char go[MAX_PROCS];
    memset(go, 'g', sizeof go);
    double t0 = now_s();
    if (write(start[1], go, (size_t)procs) != procs)
        die("cannot start the children");

    tally_t *sum = calloc(1, sizeof *sum), *one = malloc(sizeof *one);
    if (sum == NULL || one == NULL)
        die("out of memory");
    int got = 0;
    for (int i = 0; i < procs; i++) {
        if (read_all(out[0], one, sizeof *one) < 0)
            break;
        got++;
        sum->ops += one->ops;
        sum->errors += one->errors;
        for (size_t b = 0; b < BUCKETS; b++)
            sum->hist[b] += one->hist[b];
    }
    double elapsed = now_s() - t0;
    int failed = got != procs;
    for (int i = 0; i < procs; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            failed = 1;
    }
    if (failed) {
        fprintf(stderr, "ldap_binds: %d of %d processes did not report\n", procs - got, procs);
        return 1;
    }
    uint64_t total = sum->ops + sum->errors;
    printf("ops %llu errors %llu seconds %.3f rate %.1f p50_ms %.3f p99_ms %.3f\n",
           (unsigned long long)sum->ops, (unsigned long long)sum->errors, elapsed,
           (double)sum->ops / elapsed, percentile_ms(sum->hist, total, 0.50),
           percentile_ms(sum->hist, total, 0.99));
    int rc = sum->errors == 0 ? 0 : 1;
    free(sum);
    free(one);
    return rc;
}
