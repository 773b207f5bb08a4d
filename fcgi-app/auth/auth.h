/* Who is calling: a bearer token (SSO JWT, no CSRF needed) or a session
 * cookie (CSRF token and Origin checked on unsafe methods), and whether the
 * route lets their roles in. Also the session token primitives. */
#ifndef ITPM_AUTH_H
#define ITPM_AUTH_H

#include "http/request.h"
#include "http/response.h"
#include "auth/user.h"

#include <stddef.h>

#define SESSION_COOKIE "__Host-itpm_session"
#define TOKEN_CHARS 43 /* 32 random bytes in base64url, unpadded */

struct jwks;

/* Set once by the master before forking: the SSO keys (NULL = no SSO). */
void auth_set_jwks(const struct jwks *keys);
const struct jwks *auth_jwks(void);

/* Authenticates req and checks allowed roles; on failure res holds the
 * problem (401, 403, 503) and -1 is returned. */
int auth_guard(request_t *req, response_t *res, unsigned allowed_roles);
/* Verifies an SSO token into user; -1 with *reason on failure. */
int auth_verify_sso(request_t *req, const char *token, size_t len, user_t *user,
                    const char **reason);
/* A new random token, TOKEN_CHARS + NUL bytes; -1 if the RNG fails. */
int auth_token_new(char *out, size_t outlen);
/* The SHA-256 of token as a bytea literal ("\\x" + 64 hex) for a parameter. */
char *auth_token_hash(arena_t *a, const char *token);
/* The session token from the Cookie header, NULL when none. */
const char *auth_cookie_token(request_t *req);
/* Whether an Origin header, if present, is the platform's own. */
int auth_origin_ok(request_t *req);

#endif
