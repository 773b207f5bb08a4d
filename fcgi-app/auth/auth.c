/* Request authentication and authorization. */
#include "auth/auth.h"

#include "http/app.h"
#include "core/digest.h"
#include "auth/jwt.h"
#include "core/log.h"
#include "http/problem.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const jwks_t *sso_keys;

/* Safe to resend: the lookup's one write, the session's last_seen, a resend
 * only sets again. */
static const db_stmt_t stmt_session_lookup = {
    "session_lookup",
    "SELECT user_id, display_name, unit, region, roles, classified, csrf_token,"
    " to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), source"
    " FROM session_lookup($1::bytea)",
    1, 1};

void auth_set_jwks(const struct jwks *keys)
{
    sso_keys = keys;
}

const struct jwks *auth_jwks(void)
{
    return sso_keys;
}

int auth_token_new(char *out, size_t outlen)
{
    unsigned char raw[32];
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if (outlen < TOKEN_CHARS + 1 || RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < sizeof raw; i += 3) {
        unsigned v = (unsigned)raw[i] << 16;
        if (i + 1 < sizeof raw)
            v |= (unsigned)raw[i + 1] << 8;
        if (i + 2 < sizeof raw)
            v |= raw[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        if (i + 1 < sizeof raw)
            out[o++] = b64[(v >> 6) & 63];
        if (i + 2 < sizeof raw)
            out[o++] = b64[v & 63];
    }
    out[o] = '\0';
    OPENSSL_cleanse(raw, sizeof raw);
    return 0;
}

char *auth_token_hash(arena_t *a, const char *token)
{
    unsigned char md[SHA256_BYTES];
    char *out = arena_alloc(a, 2 + 64 + 1);
    if (digest_sha256(token, strlen(token), md) < 0) {
        /* Unusable hash: a value that matches no stored session. */
        memcpy(out, "\\x", 2);
        memset(out + 2, '0', 64);
        out[66] = '\0';
        return out;
    }
    static const char hex[] = "0123456789abcdef";
    out[0] = '\\';
    out[1] = 'x';
    for (int i = 0; i < 32; i++) {
        out[2 + 2 * i] = hex[md[i] >> 4];
        out[3 + 2 * i] = hex[md[i] & 15];
    }
    out[66] = '\0';
    return out;
}

const char *auth_cookie_token(request_t *req)
{
    const char *cookies = request_header(req, "Cookie");
    const size_t nlen = sizeof SESSION_COOKIE - 1;
    for (const char *p = cookies; p != NULL && *p != '\0';) {
        while (*p == ' ' || *p == ';')
            p++;
        size_t len = strcspn(p, ";");
        if (len > nlen && strncmp(p, SESSION_COOKIE, nlen) == 0 && p[nlen] == '=') {
            size_t vlen = len - nlen - 1;
            if (vlen != TOKEN_CHARS)
                return NULL;
            return arena_strndup(req->arena, p + nlen + 1, vlen);
        }
        p += len;
    }
    return NULL;
}

int auth_origin_ok(request_t *req)
{
    const char *origin = request_header(req, "Origin");
    return origin == NULL || strcmp(origin, req->conf->public_origin) == 0;
}

static int is_safe_method(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0;
}

static int sso_verify(request_t *req, const char *token, size_t len, user_t *user,
                      long long *exp_out, long long *nbf_out, const char **reason);

int auth_verify_sso(request_t *req, const char *token, size_t len, user_t *user,
                    const char **reason)
{
    long long exp, nbf;
    return sso_verify(req, token, len, user, &exp, &nbf, reason);
}

static void unauthorized(request_t *req, response_t *res, const char *detail)
{
    response_header(res, "WWW-Authenticate", "Bearer realm=\"itpm\"");
    problem_simple(req->arena, res, 401, detail, NULL);
}

static int sso_verify(request_t *req, const char *token, size_t len, user_t *user,
                      long long *exp_out, long long *nbf_out, const char **reason)
{
    static char why[160];
    memset(user, 0, sizeof *user);
    if (sso_keys == NULL) {
        *reason = "single sign-on is not configured";
        return -1;
    }
    jwt_policy_t policy = {.issuer = req->conf->sso_issuer,
                           .audience = req->conf->sso_audience,
                           .now = (long long)time(NULL),
                           .skew = req->conf->sso_clock_skew,
                           .max_len = (size_t)req->conf->sso_max_token};
    jwt_claims_t claims;
    if (jwt_verify(sso_keys, &policy, token, len, &claims, why, sizeof why) < 0) {
        *reason = why;
        return -1;
    }
    snprintf(user->id, sizeof user->id, "%s", claims.sub);
    snprintf(user->name, sizeof user->name, "%s", claims.name);
    snprintf(user->unit, sizeof user->unit, "%s", claims.unit);
    snprintf(user->region, sizeof user->region, "%s", claims.region);
    for (int i = 0; i < claims.nroles; i++)
        user->roles |= role_from_name(claims.roles[i]);
    user->classified = claims.classified;
    user->via = AUTH_BEARER;
    *exp_out = claims.exp;
    *nbf_out = claims.nbf;
    time_t exp = (time_t)claims.exp;
    struct tm tm;
    if (gmtime_r(&exp, &tm) != NULL)
        strftime(user->expires, sizeof user->expires, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (user->roles == 0) {
        *reason = "token carries no itpm role";
        return -1;
    }
    if (!region_code_valid(user->region) || !unit_code_valid(user->unit) ||
        strncmp(user->unit, user->region, 6) != 0) {
        *reason = "token unit or region malformed, or they disagree";
        return -1;
    }
    return 0;
}

/* Verified tokens, per worker, keyed by the token's SHA-256: a portal sends
 * the same token on many calls and an RSA or ECDSA check costs more than the
 * rest of the request. An entry is used only inside the token's own
 * validity; the keys and the policy cannot change under a worker (a reload
 * replaces the workers). */
#define SSO_CACHE_SLOTS 64

typedef struct {
    unsigned char key[32];
    long long exp;
    long long nbf;
    user_t user;
    int used;
} sso_cache_entry_t;

static sso_cache_entry_t sso_cache[SSO_CACHE_SLOTS];

static int from_bearer(request_t *req, response_t *res, const char *authz, user_t *user)
{
    const char *token = authz + 7;
    size_t len = strlen(token);
    unsigned char key[SHA256_BYTES];
    long long now = (long long)time(NULL);
    int skew = req->conf->sso_clock_skew;
    int hashed = len <= (size_t)req->conf->sso_max_token && digest_sha256(token, len, key) == 0;
    sso_cache_entry_t *e = hashed ? &sso_cache[key[0] % SSO_CACHE_SLOTS] : NULL;
    if (e != NULL && e->used && CRYPTO_memcmp(e->key, key, 32) == 0 && now < e->exp + skew &&
        now >= e->nbf - skew) {
        *user = e->user;
        return 0;
    }
    const char *reason;
    long long exp, nbf;
    if (sso_verify(req, token, len, user, &exp, &nbf, &reason) < 0) {
        log_warn("rid=%s bearer token refused: %s", req->request_id, reason);
        unauthorized(req, res, "the bearer token is not valid");
        return -1;
    }
    if (e != NULL) {
        memcpy(e->key, key, 32);
        e->exp = exp;
        e->nbf = nbf;
        e->user = *user;
        e->used = 1;
    }
    return 0;
}

static int from_cookie(request_t *req, response_t *res, const char *token, user_t *user)
{
    const char *values[] = {auth_token_hash(req->arena, token)};
    db_status_t status;
    PGresult *rs = db_query(req->app->db, req->arena, &stmt_session_lookup, values, &status);
    if (rs == NULL) {
        app_db_problem(req, res, status);
        return -1;
    }
    if (PQntuples(rs) != 1) {
        unauthorized(req, res, "the session has ended; log in again");
        return -1;
    }
    memset(user, 0, sizeof *user);
    snprintf(user->id, sizeof user->id, "%s", PQgetvalue(rs, 0, 0));
    snprintf(user->name, sizeof user->name, "%s", PQgetvalue(rs, 0, 1));
    snprintf(user->unit, sizeof user->unit, "%s", PQgetvalue(rs, 0, 2));
    snprintf(user->region, sizeof user->region, "%s", PQgetvalue(rs, 0, 3));
    user->roles = roles_parse_pg_array(PQgetvalue(rs, 0, 4));
    user->classified = PQgetvalue(rs, 0, 5)[0] == 't';
    snprintf(user->csrf, sizeof user->csrf, "%s", PQgetvalue(rs, 0, 6));
    snprintf(user->expires, sizeof user->expires, "%s", PQgetvalue(rs, 0, 7));
    user->via = AUTH_COOKIE;
    return 0;
}

int auth_guard(request_t *req, response_t *res, unsigned allowed_roles)
{
    if (allowed_roles == ROLES_PUBLIC)
        return 0;
    user_t *user = arena_calloc(req->arena, sizeof *user);
    const char *authz = request_header(req, "Authorization");
    if (authz != NULL) {
        if (strncasecmp(authz, "Bearer ", 7) != 0) {
            unauthorized(req, res, "only Bearer tokens are accepted");
            return -1;
        }
        if (from_bearer(req, res, authz, user) < 0)
            return -1;
    } else {
        const char *token = auth_cookie_token(req);
        if (token == NULL) {
            unauthorized(req, res, "log in first");
            return -1;
        }
        if (from_cookie(req, res, token, user) < 0)
            return -1;
        /* A cookie rides along on cross-site requests; the CSRF token and
         * the Origin do not. */
        if (!is_safe_method(req->method)) {
            const char *csrf = request_header(req, "X-CSRF-Token");
            size_t n = strlen(user->csrf);
            if (csrf == NULL || strlen(csrf) != n || n == 0 ||
                CRYPTO_memcmp(csrf, user->csrf, n) != 0) {
                problem_simple(req->arena, res, 403, "the X-CSRF-Token header is missing or wrong",
                               NULL);
                return -1;
            }
            if (!auth_origin_ok(req)) {
                problem_simple(req->arena, res, 403, "cross-origin request refused", NULL);
                return -1;
            }
        }
    }
    req->user = user;
    req->user_id = user->id;
    if ((user->roles & allowed_roles) == 0) {
        problem_simple(req->arena, res, 403, "your role may not do this", NULL);
        return -1;
    }
    return 0;
}
