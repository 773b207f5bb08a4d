/* libldap client for directory logins. Two connections per worker: one
 * bound as the service account for searches, one for the users' own binds,
 * so a login never changes the identity the searches run under. */
#include "auth/ldap_auth.h"

#include "core/log.h"
#include "core/xalloc.h"

#include <stdint.h>
#include <lber.h>
#include <ldap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define USERNAME_MAX 64
#define PASSWORD_MAX 1024

struct ldap_dir {
    const conf_t *conf;
    LDAP *search;
    LDAP *bind;
    int last_rc; /* result of the last failed operation */
};

int ldap_dir_enabled(const conf_t *conf)
{
    return conf->ldap_uri[0] != '\0';
}

ldap_dir_t *ldap_dir_create(const conf_t *conf)
{
    ldap_dir_t *d = xcalloc(1, sizeof *d);
    d->conf = conf;
    return d;
}

static void drop(LDAP **ld)
{
    if (*ld != NULL)
        ldap_unbind_ext_s(*ld, NULL, NULL);
    *ld = NULL;
}

void ldap_dir_destroy(ldap_dir_t *dir)
{
    if (dir == NULL)
        return;
    drop(&dir->search);
    drop(&dir->bind);
    free(dir);
}

static int is_down(int rc)
{
    return rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT || rc == LDAP_CONNECT_ERROR ||
           rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY || rc == LDAP_LOCAL_ERROR ||
           rc == LDAP_NO_MEMORY || rc == LDAP_TIMELIMIT_EXCEEDED || rc == LDAP_OTHER;
}

/* Opens a connection with the configured time-outs and TLS; -1 on failure. */
static int open_conn(ldap_dir_t *dir, LDAP **out)
{
    const conf_t *c = dir->conf;
    LDAP *ld = NULL;
    int rc = ldap_initialize(&ld, c->ldap_uri);
    if (rc != LDAP_SUCCESS) {
        log_error("ldap_initialize %s: %s", c->ldap_uri, ldap_err2string(rc));
        return -1;
    }
    int version = LDAP_VERSION3;
    struct timeval net = {c->ldap_network_timeout, 0};
    struct timeval op = {c->ldap_timeout, 0};
    int demand = LDAP_OPT_X_TLS_DEMAND;
    int zero = 0;
    if (ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &net) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_TIMEOUT, &op) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand) != LDAP_OPT_SUCCESS) {
        log_error("ldap: cannot set connection options");
        goto fail;
    }
    if (c->ldap_ca_file[0] != '\0' &&
        ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, c->ldap_ca_file) != LDAP_OPT_SUCCESS) {
        log_error("ldap: cannot use ca_file %s", c->ldap_ca_file);
        goto fail;
    }
    /* A fresh TLS context so the options above apply to this handle. */
    if (ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero) != LDAP_OPT_SUCCESS) {
        log_error("ldap: cannot create a TLS context");
        goto fail;
    }
    if (c->ldap_starttls) {
        rc = ldap_start_tls_s(ld, NULL, NULL);
        if (rc != LDAP_SUCCESS) {
            log_error("ldap StartTLS to %s: %s", c->ldap_uri, ldap_err2string(rc));
            goto fail;
        }
    }
    *out = ld;
    return 0;
fail:
    ldap_unbind_ext_s(ld, NULL, NULL);
    return -1;
}

static int simple_bind(LDAP *ld, const char *dn, const char *password)
{
    struct berval cred;
    cred.bv_val = (char *)(uintptr_t)password;
    cred.bv_len = strlen(password);
    return ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

static int ensure_search(ldap_dir_t *dir)
{
    if (dir->search != NULL)
        return 0;
    if (open_conn(dir, &dir->search) < 0)
        return -1;
    const conf_t *c = dir->conf;
    int rc = simple_bind(dir->search, c->ldap_bind_dn[0] ? c->ldap_bind_dn : NULL,
                         c->ldap_bind_dn[0] ? c->ldap_bind_password : "");
    if (rc != LDAP_SUCCESS) {
        log_error("ldap service bind as %s: %s", c->ldap_bind_dn[0] ? c->ldap_bind_dn : "anonymous",
                  ldap_err2string(rc));
        drop(&dir->search);
        return -1;
    }
    return 0;
}

int ldap_filter_build(const char *tmpl, const char *value, char *out, size_t outlen)
{
    struct berval in, esc = {0, NULL};
    in.bv_val = (char *)(uintptr_t)value;
    in.bv_len = strlen(value);
    if (ldap_bv2escaped_filter_value(&in, &esc) != 0)
        return -1;
    const char *mark = strstr(tmpl, "%s");
    int rc = -1;
    if (mark != NULL) {
        size_t head = (size_t)(mark - tmpl), tail = strlen(mark + 2);
        if (head + esc.bv_len + tail < outlen) {
            memcpy(out, tmpl, head);
            memcpy(out + head, esc.bv_val, esc.bv_len);
            memcpy(out + head + esc.bv_len, mark + 2, tail + 1);
            rc = 0;
        }
    }
    ber_memfree(esc.bv_val);
    return rc;
}

/* Usernames are printable ASCII without spaces. Anything else is refused
 * before the directory sees it: LDAP matching folds Unicode spellings
 * (no-break and fullwidth characters, the long s) and runs of spaces onto an
 * ASCII uid, which would let a respelling dodge the failed-login lock that
 * counts per typed account. ASCII punctuation goes through, escaped. */
static int username_acceptable(const char *u)
{
    size_t n = strlen(u);
    if (n == 0 || n > USERNAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c <= 0x20 || c >= 0x7f)
            return 0;
    }
    return 1;
}

/* The value of the first RDN when it is cn=..., into out. */
static int group_cn(const char *dn, char *out, size_t outlen)
{
    if (strncasecmp(dn, "cn=", 3) != 0)
        return -1;
    const char *v = dn + 3;
    size_t n = 0;
    while (v[n] != '\0' && v[n] != ',' && v[n] != '+' && v[n] != '\\')
        n++;
    if (n == 0 || n >= outlen)
        return -1;
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}

static void apply_group(const conf_t *c, const char *cn, user_t *user)
{
    for (int i = 0; i < ROLE_COUNT; i++)
        if (c->group_role[i][0] != '\0' && strcasecmp(c->group_role[i], cn) == 0)
            user->roles |= 1u << i;
    if (c->group_classified[0] != '\0' && strcasecmp(c->group_classified, cn) == 0)
        user->classified = 1;
}

static void copy_attr(LDAP *ld, LDAPMessage *e, const char *attr, char *out, size_t outlen)
{
    struct berval **v = ldap_get_values_len(ld, e, attr);
    out[0] = '\0';
    if (v != NULL && v[0] != NULL && v[0]->bv_len < outlen && memchr(v[0]->bv_val, 0, v[0]->bv_len) == NULL) {
        memcpy(out, v[0]->bv_val, v[0]->bv_len);
        out[v[0]->bv_len] = '\0';
    }
    ldap_value_free_len(v);
}

/* Whether the group dn lies under base (both normalised, compared without
 * case): a group of the same name elsewhere in the directory, which anyone
 * allowed to create entries there could make, grants nothing. */
static int group_in_base(const char *dn, const char *base)
{
    char *g = NULL, *b = NULL;
    int in = 0;
    if (ldap_dn_normalize(dn, LDAP_DN_FORMAT_LDAP, &g, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS &&
        ldap_dn_normalize(base, LDAP_DN_FORMAT_LDAP, &b, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS &&
        g != NULL && b != NULL) {
        size_t gl = strlen(g), bl = strlen(b);
        in = bl > 0 && gl > bl + 1 && g[gl - bl - 1] == ',' && strcasecmp(g + gl - bl, b) == 0;
    }
    ldap_memfree(g);
    ldap_memfree(b);
    return in;
}

static dir_status_t read_groups(ldap_dir_t *dir, LDAPMessage *entry, const char *dn,
                                user_t *user)
{
    const conf_t *c = dir->conf;
    char cn[256];
    if (c->ldap_attr_member_of[0] != '\0') {
        struct berval **v = ldap_get_values_len(dir->search, entry, c->ldap_attr_member_of);
        for (int i = 0; v != NULL && v[i] != NULL; i++) {
            char buf[1024];
            if (v[i]->bv_len >= sizeof buf)
                continue;
            memcpy(buf, v[i]->bv_val, v[i]->bv_len);
            buf[v[i]->bv_len] = '\0';
            if (group_in_base(buf,
                              c->ldap_group_base_dn[0] ? c->ldap_group_base_dn : c->ldap_base_dn) &&
                group_cn(buf, cn, sizeof cn) == 0)
                apply_group(c, cn, user);
        }
        ldap_value_free_len(v);
        return DIR_OK;
    }
    char filter[2048];
    if (ldap_filter_build(c->ldap_group_filter, dn, filter, sizeof filter) < 0)
        return DIR_INCOMPLETE;
    char *attrs[] = {"cn", NULL};
    struct timeval tv = {c->ldap_timeout, 0};
    LDAPMessage *res = NULL;
    int rc = ldap_search_ext_s(dir->search,
                               c->ldap_group_base_dn[0] ? c->ldap_group_base_dn : c->ldap_base_dn,
                               LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL, NULL, &tv, 200, &res);
    if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
        ldap_msgfree(res);
        dir->last_rc = rc;
        log_error("ldap group search: %s", ldap_err2string(rc));
        drop(&dir->search);
        return DIR_UNAVAILABLE;
    }
    for (LDAPMessage *e = ldap_first_entry(dir->search, res); e != NULL;
         e = ldap_next_entry(dir->search, e)) {
        copy_attr(dir->search, e, "cn", cn, sizeof cn);
        if (cn[0] != '\0')
            apply_group(c, cn, user);
    }
    ldap_msgfree(res);
    return DIR_OK;
}

static dir_status_t login_once(ldap_dir_t *dir, const char *username, const char *password,
                               user_t *user, const char **reason)
{
    const conf_t *c = dir->conf;
    memset(user, 0, sizeof *user);
    if (!ldap_dir_enabled(c)) {
        *reason = "no directory configured";
        return DIR_UNAVAILABLE;
    }
    if (!username_acceptable(username)) {
        *reason = "username refused before search";
        return DIR_DENIED;
    }
    /* An empty password would be an unauthenticated bind, which succeeds. */
    if (password[0] == '\0' || strlen(password) > PASSWORD_MAX) {
        *reason = "empty or oversized password refused before bind";
        return DIR_DENIED;
    }
    char filter[1024];
    if (ldap_filter_build(c->ldap_user_filter, username, filter, sizeof filter) < 0) {
        *reason = "username does not fit the filter";
        return DIR_DENIED;
    }
    if (ensure_search(dir) < 0) {
        *reason = "directory unreachable";
        return DIR_UNAVAILABLE;
    }
    char *attrs[] = {c->ldap_attr_uid, c->ldap_attr_name, c->ldap_attr_unit, c->ldap_attr_region,
                     c->ldap_attr_member_of[0] ? c->ldap_attr_member_of : NULL, NULL};
    struct timeval tv = {c->ldap_timeout, 0};
    LDAPMessage *res = NULL;
    int rc = ldap_search_ext_s(dir->search, c->ldap_base_dn, LDAP_SCOPE_SUBTREE, filter, attrs, 0,
                               NULL, NULL, &tv, 2, &res);
    if (rc == LDAP_SIZELIMIT_EXCEEDED) {
        ldap_msgfree(res);
        *reason = "username matches more than one entry";
        return DIR_DENIED;
    }
    if (rc != LDAP_SUCCESS) {
        ldap_msgfree(res);
        dir->last_rc = rc;
        log_error("ldap user search: %s", ldap_err2string(rc));
        drop(&dir->search);
        *reason = "directory search failed";
        return is_down(rc) || rc != LDAP_NO_SUCH_OBJECT ? DIR_UNAVAILABLE : DIR_DENIED;
    }
    int n = ldap_count_entries(dir->search, res);
    if (n != 1) {
        ldap_msgfree(res);
        *reason = n == 0 ? "unknown user" : "username matches more than one entry";
        return DIR_DENIED;
    }
    LDAPMessage *entry = ldap_first_entry(dir->search, res);
    char *dn = ldap_get_dn(dir->search, entry);
    dir_status_t st = DIR_OK;
    if (dn == NULL) {
        *reason = "entry without DN";
        st = DIR_DENIED;
        goto out;
    }
    if (dir->bind == NULL && open_conn(dir, &dir->bind) < 0) {
        *reason = "directory unreachable";
        st = DIR_UNAVAILABLE;
        goto out;
    }
    rc = simple_bind(dir->bind, dn, password);
    if (rc == LDAP_INVALID_CREDENTIALS) {
        *reason = "wrong password";
        st = DIR_DENIED;
        goto out;
    }
    if (rc != LDAP_SUCCESS) {
        dir->last_rc = rc;
        log_error("ldap bind: %s", ldap_err2string(rc));
        drop(&dir->bind);
        *reason = "directory bind failed";
        st = is_down(rc) ? DIR_UNAVAILABLE : DIR_DENIED;
        goto out;
    }
    /* The id is the directory's spelling, not what was typed. */
    copy_attr(dir->search, entry, c->ldap_attr_uid, user->id, sizeof user->id);
    if (user->id[0] == '\0') {
        *reason = "directory entry has no uid";
        st = DIR_INCOMPLETE;
        goto out;
    }
    copy_attr(dir->search, entry, c->ldap_attr_name, user->name, sizeof user->name);
    copy_attr(dir->search, entry, c->ldap_attr_unit, user->unit, sizeof user->unit);
    copy_attr(dir->search, entry, c->ldap_attr_region, user->region, sizeof user->region);
    st = read_groups(dir, entry, dn, user);
    if (st != DIR_OK) {
        *reason = "group look-up failed";
        goto out;
    }
    if (user->roles == 0) {
        *reason = "no itpm role in the directory";
        st = DIR_INCOMPLETE;
    } else if (!region_code_valid(user->region) || !unit_code_valid(user->unit) ||
               strncmp(user->unit, user->region, 6) != 0) {
        *reason = "directory entry lacks a valid unit or region";
        st = DIR_INCOMPLETE;
    }
out:
    ldap_memfree(dn);
    ldap_msgfree(res);
    return st;
}

/* A connection kept from an earlier request may have been closed by a
 * directory restart: that shows as LDAP_SERVER_DOWN on first use, and one
 * retry on fresh connections tells it from a directory that is really down.
 * A time-out is not retried (it already took its full time). */
dir_status_t ldap_dir_login(ldap_dir_t *dir, arena_t *a, const char *username,
                            const char *password, user_t *user, const char **reason)
{
    (void)a;
    int had_connections = dir->search != NULL || dir->bind != NULL;
    dir->last_rc = LDAP_SUCCESS;
    dir_status_t st = login_once(dir, username, password, user, reason);
    if (st == DIR_UNAVAILABLE && had_connections && dir->last_rc == LDAP_SERVER_DOWN) {
        /* Both: a restart closed the one not used yet as well. */
        drop(&dir->search);
        drop(&dir->bind);
        dir->last_rc = LDAP_SUCCESS;
        st = login_once(dir, username, password, user, reason);
    }
    return st;
}

static int ping_once(ldap_dir_t *dir)
{
    if (ensure_search(dir) < 0)
        return -1;
    char *attrs[] = {"1.1", NULL};
    struct timeval tv = {dir->conf->ldap_timeout, 0};
    LDAPMessage *res = NULL;
    int rc = ldap_search_ext_s(dir->search, dir->conf->ldap_base_dn, LDAP_SCOPE_BASE,
                               "(objectClass=*)", attrs, 0, NULL, NULL, &tv, 1, &res);
    ldap_msgfree(res);
    if (rc != LDAP_SUCCESS) {
        dir->last_rc = rc;
        log_error("ldap ping: %s", ldap_err2string(rc));
        drop(&dir->search);
        return -1;
    }
    return 0;
}

int ldap_dir_ping(ldap_dir_t *dir)
{
    int had_connection = dir->search != NULL;
    dir->last_rc = LDAP_SUCCESS;
    if (ping_once(dir) == 0)
        return 0;
    if (!had_connection || dir->last_rc != LDAP_SERVER_DOWN)
        return -1;
    return ping_once(dir);
}
