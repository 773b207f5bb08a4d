/* SSO tokens: the identity provider's public keys (a JWKS file) and the
 * verification of compact JWS tokens (RS256, ES256) into the claims the user
 * model needs. The key, never the token, decides the algorithm. */
#ifndef ITPM_JWT_H
#define ITPM_JWT_H

#include <stddef.h>

typedef struct jwks jwks_t;

/* Loads a JWKS file: {"keys":[...]} with RSA keys (kty RSA, n, e; modulus >= 2048 bits)
 * and EC P-256 keys (kty EC, crv P-256, x, y, each 32 bytes, point on the curve).
 * Every key needs a kid (1..64 chars of [A-Za-z0-9._-]); duplicate kids refused;
 * "alg" if present must be RS256 for RSA and ES256 for EC; "use" if present must be "sig";
 * private members (d, p, q, ...) refused. Returns NULL and a reason in err.
 * The result is read-only and may be shared by threads (and inherited across fork). */
jwks_t *jwks_load(const char *path, char *err, size_t errlen);
void jwks_free(jwks_t *keys);
size_t jwks_count(const jwks_t *keys);

#define JWT_MAX_ROLES 16
typedef struct {
    char sub[129];                 /* required, 1..128 bytes */
    char name[129];                /* optional display name ("" when absent) */
    char unit[33];                 /* required */
    char region[9];                /* required */
    char roles[JWT_MAX_ROLES][33]; /* required array of strings (may be empty) */
    int nroles;
    int classified;          /* claim "clearance": "classified" (optional) */
    long long exp, nbf, iat; /* nbf and iat are 0 when absent */
} jwt_claims_t;

typedef struct {
    const char *issuer;   /* iss must equal it exactly */
    const char *audience; /* aud (a string, or an array containing it) must match */
    long long now;        /* seconds since the epoch */
    int skew;             /* seconds of clock skew allowed on exp and nbf (0..86400) */
    size_t max_len;       /* longest token accepted, e.g. 8192 */
} jwt_policy_t;

/* Verifies a compact JWS and extracts the claims. 0 on success; -1 with a
 * short reason in why (for the log, never for the client). The reason never
 * quotes the token. On failure *out is all zeroes. */
int jwt_verify(const jwks_t *keys, const jwt_policy_t *policy, const char *token, size_t len,
               jwt_claims_t *out, char *why, size_t whylen);

#endif
