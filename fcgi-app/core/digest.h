/* SHA-256 of a buffer in one call, without OpenSSL 3 looking the algorithm
 * up again on every call (its implicit fetch, with locks and a property
 * query, cost more than hashing a bearer token). */
#ifndef ITPM_DIGEST_H
#define ITPM_DIGEST_H

#include <stddef.h>

#define SHA256_BYTES 32

/* 0, or -1 when OpenSSL fails (out of memory). */
int digest_sha256(const void *data, size_t len, unsigned char out[SHA256_BYTES]);

#endif
