/* One fetched SHA-256 and one context per process, reused: a worker hashes
 * one buffer at a time. */
#include "core/digest.h"

#include <openssl/evp.h>

int digest_sha256(const void *data, size_t len, unsigned char out[SHA256_BYTES])
{
    static EVP_MD *md;
    static EVP_MD_CTX *ctx;
    if (md == NULL && (md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
        return -1;
    if (ctx == NULL && (ctx = EVP_MD_CTX_new()) == NULL)
        return -1;
    unsigned int n = 0;
    if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, data, len) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &n) != 1 || n != SHA256_BYTES)
        return -1;
    return 0;
}
