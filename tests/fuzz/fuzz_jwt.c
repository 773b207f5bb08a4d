/* libFuzzer target for jwt_verify: the input is a token, checked against the
 * test JWKS (env ITPM_JWKS, else tests/unit/jwt_vectors/jwks.json) with a
 * fixed policy under which the seed tokens in tests/fuzz/jwt_corpus/ verify. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"

#ifndef ITPM_SOURCE_DIR
#error "ITPM_SOURCE_DIR must name the repository root"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const jwks_t *fuzz_keys(void)
{
    /* Loaded once and kept (still reachable at exit, so LSan stays quiet). */
    static jwks_t *keys;
    if (keys == NULL) {
        const char *path = getenv("ITPM_JWKS");
        char err[256];
        if (path == NULL || path[0] == '\0')
            path = ITPM_SOURCE_DIR "/tests/unit/jwt_vectors/jwks.json";
        keys = jwks_load(path, err, sizeof err);
        if (keys == NULL) {
            fprintf(stderr, "fuzz_jwt: %s\n", err);
            abort();
        }
    }
    return keys;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const jwt_policy_t policy = {
        .issuer = "https://sso.example.gov",
        .audience = "itpm",
        .now = 1795000000LL,
        .skew = 60,
        .max_len = 8192,
    };
    jwt_claims_t claims;
    char why[160];
    /* A copy sized exactly to the input lets ASan catch any read past len. */
    char *token = malloc(size ? size : 1);
    if (token == NULL)
        return 0;
    if (size)
        memcpy(token, data, size);
    if (jwt_verify(fuzz_keys(), &policy, token, size, &claims, why, sizeof why) == 0) {
        /* Accepted claims must be terminated strings within their bounds. */
        if (strlen(claims.sub) == 0 || strlen(claims.unit) == 0 || strlen(claims.region) == 0 ||
            claims.nroles < 0 || claims.nroles > JWT_MAX_ROLES)
            abort();
    } else if (why[0] == '\0') {
        abort(); /* every refusal has a reason */
    }
    free(token);
    return 0;
}
