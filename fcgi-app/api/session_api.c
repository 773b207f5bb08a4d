/* /api/v1/session: directory login, SSO exchange, who am I, logout. */
#include "http/app.h"
#include "auth/auth.h"
#include "api/handlers.h"
#include "auth/ldap_auth.h"
#include "core/log.h"
#include "http/problem.h"
#include "xml/xml_in.h"
#include "xml/xml_out.h"

#include <stdio.h>
#include <string.h>

/* An attempt lost in a crash is one guess not counted, nobody's lost write:
 * taking and giving back one commit without waiting for the WAL flush. */
static const db_stmt_t stmt_attempt = {
    "login_attempt",
    "SELECT wait, attempt, set_config('synchronous_commit', 'off', true)"
    " FROM login_attempt($1, $2, $3::int, $4::int, $5::int)",
    5, 0};
static const db_stmt_t stmt_attempt_cancel = {"login_attempt_cancel",
                                              "SELECT login_attempt_cancel($1::bigint, $2, $3),"
                                              " set_config('synchronous_commit', 'off', true)",
                                              3, 0};
static const db_stmt_t stmt_failed = {"login_attempt_failed",
                                      "SELECT login_attempt_failed($1, $2, $3, $4)", 4, 0};
#define SESSION_OPEN_SQL(extra)                                                                    \
    "SELECT to_char(session_open($1::bytea, $2, $3, $4, $5, $6, $7::text[], $8::boolean, $9, $10," \
    " $11, $12::int, $13::int, $14::bytea) AT TIME ZONE 'UTC', "                                   \
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')" extra
static const db_stmt_t stmt_open = {"session_open", SESSION_OPEN_SQL(""), 14, 0};
/* The same after a login, which gives its attempt back to the throttle in
 * the session's own transaction: one round trip and one commit less. */
static const db_stmt_t stmt_open_login = {
    "session_open_login", SESSION_OPEN_SQL(", login_attempt_cancel($15::bigint, $16, $17)"), 17, 0};
static const db_stmt_t stmt_close = {
    "session_close", "SELECT session_close($1::bytea, $2, $3)", 3, 0};

static const char *const xml_types[] = {"application/xml", "text/xml", NULL};

static int session_xml(request_t *req, response_t *res, const user_t *u, int status)
{
    xml_out_t *x = xml_out_begin(req->arena, "session", ITPM_NS);
    xml_out_text_elem(x, "user", u->id);
    xml_out_text_elem(x, "name", u->name);
    xml_out_text_elem(x, "unit", u->unit);
    xml_out_text_elem(x, "region", u->region);
    xml_out_start(x, "roles");
    for (int i = 0; i < ROLE_COUNT; i++)
        if (u->roles & (1u << i))
            xml_out_text_elem(x, "role", role_names[i]);
    xml_out_end(x);
    if (u->classified)
        xml_out_text_elem(x, "clearance", "classified");
    xml_out_text_elem(x, "via", u->via == AUTH_BEARER ? "bearer" : "cookie");
    if (u->csrf[0] != '\0')
        xml_out_text_elem(x, "csrfToken", u->csrf);
    if (u->expires[0] != '\0')
        xml_out_text_elem(x, "expires", u->expires);
    return app_send_xml(req, res, x, status);
}

/* Audits a failed login; the attempt stays counted against the throttle. */
static void record_failure(request_t *req, const char *username, const char *reason)
{
    const char *values[] = {username, req->remote_addr, req->request_id, reason};
    db_status_t status;
    if (db_query(req->app->db, req->arena, &stmt_failed, values, &status) == NULL)
        log_error("rid=%s failed login of %.64s not recorded", req->request_id, username);
    log_warn("rid=%s login refused for %.64s: %s", req->request_id, username, reason);
}

/* An attempt the login that did not fail gives back to the throttle: a
 * success, or a directory that could not be asked. */
static void cancel_attempt(request_t *req, const char *attempt, const char *username)
{
    const char *values[] = {attempt, username, req->remote_addr};
    db_status_t status;
    if (db_query(req->app->db, req->arena, &stmt_attempt_cancel, values, &status) == NULL)
        log_error("rid=%s login attempt %s not given back", req->request_id, attempt);
}

/* Takes an attempt, counted as a failure until it is given back, into
 * *attempt; -1 with 429 or 503 in res. Counted before the directory is
 * asked, so that guesses sent at once cannot all pass the check. */
static int throttle_check(request_t *req, response_t *res, const char *username,
                          const char **attempt)
{
    char acct[16], addr[16], window[16];
    snprintf(acct, sizeof acct, "%d", req->conf->throttle_account_failures);
    snprintf(addr, sizeof addr, "%d", req->conf->throttle_address_failures);
    snprintf(window, sizeof window, "%d", req->conf->throttle_window);
    const char *values[] = {username, req->remote_addr, acct, addr, window};
    db_status_t status;
    PGresult *rs = db_query(req->app->db, req->arena, &stmt_attempt, values, &status);
    if (rs == NULL) {
        app_db_problem(req, res, status);
        return -1;
    }
    const char *wait = PQgetvalue(rs, 0, 0);
    if (strcmp(wait, "0") != 0 || PQgetisnull(rs, 0, 1)) {
        response_header(res, "Retry-After", arena_strdup(req->arena, wait));
        problem_simple(req->arena, res, 429, "too many failed logins; try again later", NULL);
        return -1;
    }
    *attempt = arena_strdup(req->arena, PQgetvalue(rs, 0, 1));
    return 0;
}

static char *pg_roles(arena_t *a, unsigned roles)
{
    return arena_printf(a, "{%s}", roles_format(a, roles));
}

/* Opens the session, sets the cookie and answers with the session; gives
 * a login's attempt (of the throttle's key) back, when there is one. */
static int open_session(request_t *req, response_t *res, user_t *user, const char *source,
                        const char *attempt, const char *key)
{
    char token[TOKEN_CHARS + 1], csrf[TOKEN_CHARS + 1];
    if (auth_token_new(token, sizeof token) < 0 || auth_token_new(csrf, sizeof csrf) < 0) {
        log_error("rid=%s RNG failure", req->request_id);
        problem_simple(req->arena, res, 500, "no session could be made", NULL);
        return -1;
    }
    const char *old = auth_cookie_token(req);
    char idle[16], absolute[16];
    snprintf(idle, sizeof idle, "%d", req->conf->session_idle_timeout);
    snprintf(absolute, sizeof absolute, "%d", req->conf->session_absolute_timeout);
    const char *values[] = {auth_token_hash(req->arena, token),
                            csrf,
                            user->id,
                            user->name,
                            user->unit,
                            user->region,
                            pg_roles(req->arena, user->roles),
                            user->classified ? "true" : "false",
                            source,
                            req->remote_addr,
                            req->request_id,
                            idle,
                            absolute,
                            old ? auth_token_hash(req->arena, old) : NULL,
                            attempt,
                            key,
                            req->remote_addr};
    db_status_t status;
    PGresult *rs = db_query(req->app->db, req->arena, attempt ? &stmt_open_login : &stmt_open,
                            values, &status);
    if (rs == NULL) {
        app_db_problem(req, res, status);
        return -1;
    }
    snprintf(user->csrf, sizeof user->csrf, "%s", csrf);
    snprintf(user->expires, sizeof user->expires, "%s", PQgetvalue(rs, 0, 0));
    user->via = AUTH_COOKIE;
    response_header(res, "Set-Cookie",
                    arena_printf(req->arena,
                                 SESSION_COOKIE "=%s; Path=/; Max-Age=%d; Secure; HttpOnly; "
                                                "SameSite=Strict",
                                 token, req->conf->session_absolute_timeout));
    req->user_id = arena_strdup(req->arena, user->id);
    return session_xml(req, res, user, 200);
}

/* username and password from the <login> document. */
static int read_credentials(request_t *req, response_t *res, const char **username,
                            const char **password)
{
    if (request_require_type(req, res, xml_types) < 0 || request_read_body(req, res) < 0)
        return -1;
    xmlDocPtr doc = xml_in_parse(req->arena, req->body, req->body_len, "login", res);
    if (doc == NULL)
        return -1;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    *username = xml_child_text(req->arena, root, "username");
    *password = xml_child_text(req->arena, root, "password");
    if (*password == NULL)
        *password = "";
    return 0;
}

/* The account a login attempt counts against: LDAP compares uids without
 * case and without surrounding spaces, so the throttle and the search must
 * too, or a change of spelling would dodge the lock. */
static const char *normalize_username(arena_t *a, const char *in)
{
    const char *s = in;
    const char *e = in + strlen(in);
    for (;;) {
        if (s < e && (*s == ' ' || *s == '\t'))
            s++;
        else if (e - s >= 3 && memcmp(s, "\xe3\x80\x80", 3) == 0)
            s += 3;
        else
            break;
    }
    for (;;) {
        if (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        else if (e - s >= 3 && memcmp(e - 3, "\xe3\x80\x80", 3) == 0)
            e -= 3;
        else
            break;
    }
    char *out = arena_strndup(a, s, (size_t)(e - s));
    for (char *p = out; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return out;
}

int handle_session_login(request_t *req, response_t *res)
{
    if (!auth_origin_ok(req)) {
        problem_simple(req->arena, res, 403, "cross-origin request refused", NULL);
        return -1;
    }
    const char *username, *password;
    if (read_credentials(req, res, &username, &password) < 0)
        return -1;
    username = normalize_username(req->arena, username);
    const char *attempt;
    if (throttle_check(req, res, username, &attempt) < 0)
        return -1;
    user_t user;
    const char *reason = "";
    dir_status_t st = ldap_dir_login(req->app->dir, req->arena, username, password, &user, &reason);
    if (st == DIR_UNAVAILABLE)
        cancel_attempt(req, attempt, username);
    switch (st) {
    case DIR_OK:
        return open_session(req, res, &user, "ldap", attempt, username);
    case DIR_UNAVAILABLE:
        log_error("rid=%s directory login unavailable: %s", req->request_id, reason);
        response_header(res, "Retry-After", "5");
        problem_simple(req->arena, res, 503, "the directory is unavailable", NULL);
        return -1;
    case DIR_INCOMPLETE:
        record_failure(req, username, reason);
        problem_simple(req->arena, res, 403, "your directory account has no access to itpm",
                       NULL);
        return -1;
    case DIR_DENIED:
        break;
    }
    record_failure(req, username, reason);
    response_header(res, "WWW-Authenticate", "Bearer realm=\"itpm\"");
    problem_simple(req->arena, res, 401, "wrong username or password", NULL);
    return -1;
}

int handle_session_sso(request_t *req, response_t *res)
{
    if (!auth_origin_ok(req)) {
        problem_simple(req->arena, res, 403, "cross-origin request refused", NULL);
        return -1;
    }
    /* Not the caller's failure, and not counted against its address. */
    if (auth_jwks() == NULL) {
        problem_simple(req->arena, res, 503, "single sign-on is not configured here", NULL);
        return -1;
    }
    if (request_require_type(req, res, xml_types) < 0 || request_read_body(req, res) < 0)
        return -1;
    xmlDocPtr doc = xml_in_parse(req->arena, req->body, req->body_len, "sso", res);
    if (doc == NULL)
        return -1;
    /* A JWT has no white space: what surrounds it (an indented document)
     * is layout, not part of the token. */
    const char *text = xml_child_text(req->arena, xmlDocGetRootElement(doc), "token");
    text += strspn(text, " \t\r\n");
    size_t token_len = strlen(text);
    while (token_len > 0 && strchr(" \t\r\n", text[token_len - 1]) != NULL)
        token_len--;
    const char *token = arena_strndup(req->arena, text, token_len);
    /* A bad token names no account: failures count against the address only
     * (each token its own key), so they cannot lock other users out. */
    const char *key = arena_printf(req->arena, "sso:%.16s", auth_token_hash(req->arena, token) + 2);
    const char *attempt;
    if (throttle_check(req, res, key, &attempt) < 0)
        return -1;
    user_t user;
    const char *reason;
    if (auth_verify_sso(req, token, token_len, &user, &reason) < 0) {
        record_failure(req, key, reason);
        response_header(res, "WWW-Authenticate", "Bearer realm=\"itpm\"");
        problem_simple(req->arena, res, 401, "the token is not valid", NULL);
        return -1;
    }
    return open_session(req, res, &user, "sso", attempt, key);
}

int handle_session_get(request_t *req, response_t *res)
{
    return session_xml(req, res, req->user, 200);
}

int handle_session_delete(request_t *req, response_t *res)
{
    const char *token = auth_cookie_token(req);
    if (req->user->via == AUTH_COOKIE && token != NULL) {
        const char *values[] = {auth_token_hash(req->arena, token), req->remote_addr,
                                req->request_id};
        db_status_t status;
        if (db_query(req->app->db, req->arena, &stmt_close, values, &status) == NULL) {
            app_db_problem(req, res, status);
            return -1;
        }
        response_header(res, "Set-Cookie",
                        SESSION_COOKIE "=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict");
    }
    response_body(res, 204, NULL, NULL, 0);
    return 0;
}
