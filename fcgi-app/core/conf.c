/* Configuration table and INI loading. A bad key or value refuses the whole
 * file, naming the file and line, so a typo never runs with a default. */
#include "core/conf.h"

#include "core/log.h"
#include "core/xalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum { CONF_STR, CONF_INT, CONF_SIZE, CONF_MODE, CONF_LEVEL, CONF_BOOL, CONF_LISTEN } conf_type_t;

typedef struct {
    const char *section;
    const char *key;
    conf_type_t type;
    size_t offset;
    const char *def;
    long long min;
    long long max;
    const char *help;
} conf_setting_t;

#define S(field) offsetof(conf_t, field)

static const conf_setting_t settings[] = {
    {"server", "listen", CONF_LISTEN, S(listen), "/run/itpm/itpmd.sock", 0, 0,
     "FastCGI listener: a unix socket path, or HOST:PORT (the host is required)"},
    {"server", "listen_backlog", CONF_INT, S(listen_backlog), "511", 1, 65535, "listen(2) backlog"},
    {"server", "socket_group", CONF_STR, S(socket_group), "", 0, 0,
     "group that owns the unix socket (nginx's group); empty keeps the process group"},
    {"server", "socket_mode", CONF_MODE, S(socket_mode), "0660", 0, 0777,
     "permissions of the unix socket"},
    {"server", "workers", CONF_INT, S(workers), "4", 1, 256, "worker processes"},
    {"server", "max_requests", CONF_INT, S(max_requests), "10000", 0, INT_MAX,
     "requests a worker serves before it is replaced; 0 = never"},
    {"server", "max_requests_jitter", CONF_INT, S(max_requests_jitter), "10", 0, 90,
     "random reduction of max_requests per worker, in percent"},
    {"server", "request_timeout", CONF_INT, S(request_timeout), "60", 0, 86400,
     "seconds a request may run before its worker is killed; 0 = no limit"},
    {"server", "shutdown_timeout", CONF_INT, S(shutdown_timeout), "30", 1, 3600,
     "seconds to finish requests in flight on SIGTERM before workers are killed"},
    {"server", "respawn_backoff_max", CONF_INT, S(respawn_backoff_max), "30", 1, 3600,
     "upper bound, in seconds, of the delay before respawning a crashing worker"},
    {"server", "pid_file", CONF_STR, S(pid_file), "", 0, 0, "master PID file; empty = none"},
    {"server", "log_file", CONF_STR, S(log_file), "", 0, 0, "log file; empty = stderr"},
    {"server", "log_level", CONF_LEVEL, S(log_level), "info", 0, 0, "error, warn, info or debug"},
    {"server", "max_body", CONF_SIZE, S(max_body), "1m", 1, 1LL << 40,
     "largest request body in bytes (k, m, g suffixes); keep equal to nginx's"},
    {"server", "public_origin", CONF_STR, S(public_origin), "https://127.0.0.1:8443", 0, 0,
     "the platform's own origin (scheme://host[:port]), checked against Origin headers"},
    {"server", "xsd_dir", CONF_STR, S(xsd_dir), ITPM_DATADIR "/xsd", 0, 0,
     "folder of the XML schemas, compiled at start-up"},
    {"batch", "max_body", CONF_SIZE, S(batch_max_body), "1g", 1, 1LL << 40,
     "largest bulk submission (POST /api/v1/batches) in bytes; nginx's limit for that path"},
    {"batch", "max_records", CONF_INT, S(batch_max_records), "1000000", 1, INT_MAX,
     "most records in one batch"},
    {"batch", "timeout", CONF_INT, S(batch_timeout), "900", 1, 86400,
     "seconds a batch may take from the first byte to the commit; past it, rolled back"},
    {"batch", "max_errors", CONF_INT, S(batch_max_errors), "10000", 1, 100000,
     "invalid records listed in a refusal (the total is always counted)"},
    {"database", "conninfo", CONF_STR, S(db_conninfo), "dbname=itpm user=itpm_app", 0, 0,
     "libpq connection string of the daemon's role (owns no table)"},
    {"database", "migrate_conninfo", CONF_STR, S(db_migrate_conninfo),
     "dbname=itpm user=itpm_owner", 0, 0, "libpq connection string of the owner, for --migrate"},
    {"database", "sql_dir", CONF_STR, S(sql_dir), ITPM_DATADIR "/sql", 0, 0,
     "folder of the numbered migrations"},
    {"database", "connect_timeout", CONF_INT, S(db_connect_timeout), "5", 1, 300,
     "seconds to wait for a database connection"},
    {"database", "statement_timeout", CONF_INT, S(db_statement_timeout), "30000", 0, 3600000,
     "milliseconds a statement may run; 0 = no limit"},
    {"ldap", "uri", CONF_STR, S(ldap_uri), "", 0, 0,
     "directory URI (ldap://host:port or ldaps://host:port); empty = no directory login"},
    {"ldap", "starttls", CONF_BOOL, S(ldap_starttls), "no", 0, 1,
     "upgrade ldap:// with StartTLS (certificate checked against ca_file)"},
    {"ldap", "ca_file", CONF_STR, S(ldap_ca_file), "", 0, 0,
     "CA certificates for ldaps:// and StartTLS; empty = the system's"},
    {"ldap", "bind_dn", CONF_STR, S(ldap_bind_dn), "", 0, 0,
     "service account that searches for users; empty = anonymous search"},
    {"ldap", "bind_password", CONF_STR, S(ldap_bind_password), "", 0, 0, "password of bind_dn"},
    {"ldap", "base_dn", CONF_STR, S(ldap_base_dn), "", 0, 0, "where users are searched"},
    {"ldap", "user_filter", CONF_STR, S(ldap_user_filter), "(&(objectClass=inetOrgPerson)(uid=%s))",
     0, 0, "user search filter; %s is the escaped username (exactly one)"},
    {"ldap", "attr_uid", CONF_STR, S(ldap_attr_uid), "uid", 0, 0,
     "attribute whose value becomes the user's id (as the directory spells it)"},
    {"ldap", "attr_name", CONF_STR, S(ldap_attr_name), "cn", 0, 0, "display name attribute"},
    {"ldap", "attr_unit", CONF_STR, S(ldap_attr_unit), "departmentNumber", 0, 0,
     "attribute holding the user's unit code"},
    {"ldap", "attr_region", CONF_STR, S(ldap_attr_region), "l", 0, 0,
     "attribute holding the user's region code"},
    {"ldap", "attr_member_of", CONF_STR, S(ldap_attr_member_of), "memberOf", 0, 0,
     "attribute listing the user's group DNs; empty = search groups with group_filter"},
    {"ldap", "group_base_dn", CONF_STR, S(ldap_group_base_dn), "", 0, 0,
     "where groups are: searched when attr_member_of is empty, else where a listed group must be"
     " (empty: base_dn)"},
    {"ldap", "group_filter", CONF_STR, S(ldap_group_filter),
     "(&(objectClass=groupOfNames)(member=%s))", 0, 0,
     "group search filter; %s is the escaped user DN"},
    {"ldap", "network_timeout", CONF_INT, S(ldap_network_timeout), "3", 1, 60,
     "seconds to connect to the directory"},
    {"ldap", "timeout", CONF_INT, S(ldap_timeout), "5", 1, 60,
     "seconds an LDAP operation may take"},
    {"roles", "submitter", CONF_STR, S(group_role[0]), "itpm-submitter", 0, 0,
     "directory group (cn) of the submitter role"},
    {"roles", "cdo", CONF_STR, S(group_role[1]), "itpm-cdo", 0, 0, "group of the cdo role"},
    {"roles", "reviewer", CONF_STR, S(group_role[2]), "itpm-reviewer", 0, 0,
     "group of the reviewer role"},
    {"roles", "director", CONF_STR, S(group_role[3]), "itpm-director", 0, 0,
     "group of the director role"},
    {"roles", "expert", CONF_STR, S(group_role[4]), "itpm-expert", 0, 0,
     "group of the expert role"},
    {"roles", "joint_reviewer", CONF_STR, S(group_role[5]), "itpm-joint-reviewer", 0, 0,
     "group of the joint_reviewer role (the department is the user's unit)"},
    {"roles", "county_admin", CONF_STR, S(group_role[6]), "itpm-county-admin", 0, 0,
     "group of the county_admin role"},
    {"roles", "evaluator", CONF_STR, S(group_role[7]), "itpm-evaluator", 0, 0,
     "group of the evaluator role"},
    {"roles", "auditor", CONF_STR, S(group_role[8]), "itpm-auditor", 0, 0,
     "group of the auditor role"},
    {"roles", "admin", CONF_STR, S(group_role[9]), "itpm-admin", 0, 0, "group of the admin role"},
    {"roles", "classified", CONF_STR, S(group_classified), "itpm-classified", 0, 0,
     "group whose members hold the classified clearance"},
    {"sso", "jwks_file", CONF_STR, S(sso_jwks_file), "", 0, 0,
     "JWKS file of the identity provider's public keys; empty = no SSO"},
    {"sso", "issuer", CONF_STR, S(sso_issuer), "", 0, 0, "required iss claim"},
    {"sso", "audience", CONF_STR, S(sso_audience), "itpm", 0, 0, "required aud claim"},
    {"sso", "clock_skew", CONF_INT, S(sso_clock_skew), "60", 0, 600,
     "seconds of clock difference allowed on exp and nbf"},
    {"sso", "max_token", CONF_INT, S(sso_max_token), "8192", 256, 65536,
     "longest token accepted, in bytes"},
    {"session", "idle_timeout", CONF_INT, S(session_idle_timeout), "1800", 5, 86400,
     "seconds without a request after which a session ends"},
    {"session", "absolute_timeout", CONF_INT, S(session_absolute_timeout), "28800", 10, 604800,
     "seconds after login after which a session ends"},
    {"throttle", "account_failures", CONF_INT, S(throttle_account_failures), "5", 1, 1000,
     "failed logins for one account within window that lock it for window"},
    {"throttle", "address_failures", CONF_INT, S(throttle_address_failures), "50", 1, 100000,
     "failed logins from one client address within window that lock it for window"},
    {"throttle", "window", CONF_INT, S(throttle_window), "900", 10, 86400,
     "seconds over which failures count, and for which a lock lasts"},
};

#define N_SETTINGS (sizeof settings / sizeof settings[0])

/* Debian's libinih reads lines into 200-byte buffers, splits longer ones
 * silently, and does not tell the handler its line number; the reader below
 * feeds it line by line, so every refusal names its own line. */
typedef struct {
    conf_t *conf;
    char *err;
    size_t errlen;
    const char *name;
    int failed;
    int error_line; /* line of the first error */
    int line;       /* line last handed to inih */
    FILE *file;     /* source: a file, or */
    const char *text; /* a string */
} load_ctx_t;

static void fail_at(load_ctx_t *ctx, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_at(load_ctx_t *ctx, int line, const char *fmt, ...)
{
    if (ctx->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, ctx->errlen, fmt, ap);
    va_end(ap);
    ctx->failed = 1;
    ctx->error_line = line;
}

static int parse_ll(const char *v, int base, long long *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, base);
    if (errno != 0 || end == v)
        return -1;
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end != '\0')
        return -1;
    *out = x;
    return 0;
}

static int parse_size(const char *v, long long *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || x < 0)
        return -1;
    long long mult = 1;
    switch (*end) {
    case 'k': case 'K': mult = 1024LL; end++; break;
    case 'm': case 'M': mult = 1024LL * 1024; end++; break;
    case 'g': case 'G': mult = 1024LL * 1024 * 1024; end++; break;
    default: break;
    }
    if (*end != '\0' || x > LLONG_MAX / mult)
        return -1;
    *out = x * mult;
    return 0;
}

static int listen_check(const char *listen, char *why, size_t whylen)
{
    if (listen[0] == '\0') {
        snprintf(why, whylen, "empty");
        return -1;
    }
    if (listen[0] == '/')
        return 0;
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon == listen) {
        snprintf(why, whylen, "a TCP listener must name its address (HOST:PORT)");
        return -1;
    }
    long long port;
    if (parse_ll(colon + 1, 10, &port) < 0 || port < 1 || port > 65535) {
        snprintf(why, whylen, "bad port");
        return -1;
    }
    return 0;
}

/* Returns NULL on success or the reason the value is refused. */
static const char *setting_apply(const conf_setting_t *s, conf_t *conf, const char *value)
{
    char *base = (char *)conf;
    long long x;
    switch (s->type) {
    case CONF_LISTEN: {
        static char why[160];
        if (listen_check(value, why, sizeof why) < 0)
            return why;
        if (value[0] == '/' && strlen(value) >= 108)
            return "unix socket path longer than 107 bytes";
    }
        /* fall through */
    case CONF_STR: {
        char **slot = (char **)(void *)(base + s->offset);
        free(*slot);
        *slot = xstrdup(value);
        return NULL;
    }
    case CONF_INT:
        if (parse_ll(value, 10, &x) < 0)
            return "not an integer";
        if (x < s->min || x > s->max)
            return "out of range";
        *(int *)(void *)(base + s->offset) = (int)x;
        return NULL;
    case CONF_MODE:
        if (parse_ll(value, 8, &x) < 0 || x < s->min || x > s->max)
            return "not an octal mode";
        *(int *)(void *)(base + s->offset) = (int)x;
        return NULL;
    case CONF_SIZE:
        if (parse_size(value, &x) < 0)
            return "not a size";
        if (x < s->min || x > s->max)
            return "out of range";
        *(long long *)(void *)(base + s->offset) = x;
        return NULL;
    case CONF_BOOL:
        if (strcasecmp(value, "yes") == 0 || strcasecmp(value, "true") == 0 ||
            strcmp(value, "1") == 0 || strcasecmp(value, "on") == 0) {
            *(int *)(void *)(base + s->offset) = 1;
            return NULL;
        }
        if (strcasecmp(value, "no") == 0 || strcasecmp(value, "false") == 0 ||
            strcmp(value, "0") == 0 || strcasecmp(value, "off") == 0) {
            *(int *)(void *)(base + s->offset) = 0;
            return NULL;
        }
        return "not yes or no";
    case CONF_LEVEL: {
        static const char *const names[] = {"error", "warn", "info", "debug"};
        for (int i = 0; i < 4; i++) {
            if (strcasecmp(value, names[i]) == 0) {
                *(int *)(void *)(base + s->offset) = i;
                return NULL;
            }
        }
        return "not one of error, warn, info, debug";
    }
    }
    return "unknown type";
}

static int on_ini_value(void *user, const char *section, const char *name, const char *value)
{
    load_ctx_t *ctx = user;
    if (name == NULL)
        return 1;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const conf_setting_t *s = &settings[i];
        if (strcmp(s->section, section) != 0 || strcmp(s->key, name) != 0)
            continue;
        const char *why = setting_apply(s, ctx->conf, value);
        if (why == NULL)
            return 1;
        fail_at(ctx, ctx->line, "[%s] %s = \"%s\": %s", section, name, value, why);
        return 0;
    }
    fail_at(ctx, ctx->line, "unknown setting [%s] %s", section, name);
    return 0;
}

static int section_known(const char *name, size_t len)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strlen(settings[i].section) == len && strncmp(settings[i].section, name, len) == 0)
            return 1;
    return 0;
}

/* The next raw line into buf (with its newline); its length, 0 at the end,
 * or -1 when it does not fit (the rest of the line is skipped). */
static long next_line(load_ctx_t *ctx, char *buf, size_t size)
{
    size_t n = 0;
    int c, overflow = 0;
    for (;;) {
        if (ctx->file != NULL) {
            c = fgetc(ctx->file);
        } else {
            c = *ctx->text != '\0' ? (unsigned char)*ctx->text++ : EOF;
        }
        if (c == EOF)
            break;
        if (n + 1 < size)
            buf[n++] = (char)c;
        else
            overflow = 1;
        if (c == '\n')
            break;
    }
    buf[n] = '\0';
    if (overflow)
        return -1;
    return (long)n;
}

static char *read_line(char *str, int num, void *stream)
{
    load_ctx_t *ctx = stream;
    char buf[4096];
    long n = next_line(ctx, buf, sizeof buf);
    if (n == 0)
        return NULL;
    ctx->line++;
    if (n < 0 || n >= num - 1) {
        fail_at(ctx, ctx->line, "line longer than %d bytes", num - 2);
        memcpy(str, "\n", 2);
        return str;
    }
    const char *p = buf;
    while (*p == ' ' || *p == '\t')
        p++;
    if (p != buf && *p != '\0' && *p != '\n' && *p != '\r' && *p != ';' && *p != '#') {
        /* inih would take an indented line as the continuation of the value
         * above and replace it: refused instead. */
        fail_at(ctx, ctx->line, "indented line (continuation lines are not accepted)");
    } else if (*p == '[') {
        const char *end = strchr(p, ']');
        if (end != NULL && !section_known(p + 1, (size_t)(end - p - 1)))
            fail_at(ctx, ctx->line, "unknown section [%.*s]", (int)(end - p - 1), p + 1);
    }
    memcpy(str, buf, (size_t)n + 1);
    return str;
}

static void conf_defaults(conf_t *conf)
{
    memset(conf, 0, sizeof *conf);
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *why = setting_apply(&settings[i], conf, settings[i].def);
        if (why != NULL) {
            log_error("bad default for %s.%s: %s", settings[i].section, settings[i].key, why);
            abort();
        }
    }
}

/* Checks across settings, made before anything forks. */
static int conf_cross_check(const conf_t *conf, char *why, size_t whylen)
{
    if (conf->ldap_uri[0] != '\0') {
        const char *f = strstr(conf->ldap_user_filter, "%s");
        if (f == NULL || strstr(f + 2, "%s") != NULL || strchr(conf->ldap_user_filter, '%') != f) {
            snprintf(why, whylen, "[ldap] user_filter must hold exactly one %%s");
            return -1;
        }
        f = strstr(conf->ldap_group_filter, "%s");
        if (f == NULL || strstr(f + 2, "%s") != NULL || strchr(conf->ldap_group_filter, '%') != f) {
            snprintf(why, whylen, "[ldap] group_filter must hold exactly one %%s");
            return -1;
        }
        if (conf->ldap_base_dn[0] == '\0') {
            snprintf(why, whylen, "[ldap] base_dn is empty");
            return -1;
        }
        if (strncmp(conf->ldap_uri, "ldap://", 7) != 0 && strncmp(conf->ldap_uri, "ldaps://", 8) != 0) {
            snprintf(why, whylen, "[ldap] uri must start with ldap:// or ldaps://");
            return -1;
        }
    }
    if (conf->sso_jwks_file[0] != '\0' && conf->sso_issuer[0] == '\0') {
        snprintf(why, whylen, "[sso] issuer is required with jwks_file");
        return -1;
    }
    if (conf->session_idle_timeout > conf->session_absolute_timeout) {
        snprintf(why, whylen, "[session] idle_timeout is longer than absolute_timeout");
        return -1;
    }
    if (conf->db_conninfo[0] == '\0') {
        snprintf(why, whylen, "[database] conninfo is empty");
        return -1;
    }
    return 0;
}

static int conf_parse(load_ctx_t *ctx, conf_t *conf)
{
    char why[512];
    conf_defaults(conf);
    int rc = ini_parse_stream(read_line, ctx, on_ini_value, ctx);
    if (ctx->failed && (rc <= 0 || ctx->error_line <= rc)) {
        char reason[512];
        snprintf(reason, sizeof reason, "%s", ctx->err);
        snprintf(ctx->err, ctx->errlen, "%s:%d: %s", ctx->name, ctx->error_line, reason);
        rc = 1;
    } else if (rc == -2) {
        snprintf(ctx->err, ctx->errlen, "%s: out of memory", ctx->name);
    } else if (rc > 0) {
        snprintf(ctx->err, ctx->errlen, "%s:%d: syntax error", ctx->name, rc);
    } else if (conf_cross_check(conf, why, sizeof why) < 0) {
        snprintf(ctx->err, ctx->errlen, "%s: %s", ctx->name, why);
        rc = 1;
    }
    if (rc != 0) {
        conf_free(conf);
        return -1;
    }
    return 0;
}

int conf_load(const char *path, conf_t *conf, char *err, size_t errlen)
{
    load_ctx_t ctx = {.conf = conf, .err = err, .errlen = errlen, .name = path};
    err[0] = '\0';
    ctx.file = fopen(path, "r");
    if (ctx.file == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        memset(conf, 0, sizeof *conf);
        return -1;
    }
    int rc = conf_parse(&ctx, conf);
    fclose(ctx.file);
    return rc;
}

int conf_load_string(const char *text, const char *name, conf_t *conf, char *err, size_t errlen)
{
    load_ctx_t ctx = {.conf = conf, .err = err, .errlen = errlen, .name = name, .text = text};
    err[0] = '\0';
    return conf_parse(&ctx, conf);
}

void conf_free(conf_t *conf)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (settings[i].type != CONF_STR && settings[i].type != CONF_LISTEN)
            continue;
        char **slot = (char **)(void *)((char *)conf + settings[i].offset);
        free(*slot);
        *slot = NULL;
    }
}

void conf_print_reference(void)
{
    const char *section = "";
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const conf_setting_t *s = &settings[i];
        if (strcmp(section, s->section) != 0) {
            printf("%s[%s]\n", i ? "\n" : "", s->section);
            section = s->section;
        }
        printf("; %s\n%s = %s\n", s->help, s->key, s->def);
    }
}
