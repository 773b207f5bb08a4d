/* SSO token verifier: owns the JWKS (public keys, each pinned to one
 * algorithm by its type) and the checks on a compact JWS, in this order:
 * shape, header, signature, and only then the claims. */
#include "auth/jwt.h"

#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#define JWKS_MAX_FILE 1048576
#define JWKS_MAX_KEYS 64
#define JWK_KID_MAX 64
#define RSA_MIN_BITS 2048
/* Bigger moduli only cost the verifier CPU per forged token. */
#define RSA_MAX_BITS 8192
/* A public exponent above 2^64 is no real key and makes verification slow. */
#define RSA_MAX_E_BYTES 8
#define P256_BYTES 32
#define JWT_SKEW_MAX 86400
/* NumericDate up to 9999-12-31T23:59:59Z: exp + skew cannot overflow. */
#define JWT_TIME_MAX 253402300799LL

typedef enum { JWK_RSA, JWK_EC } jwk_type_t;

typedef struct {
    char kid[JWK_KID_MAX + 1];
    jwk_type_t type;
    EVP_PKEY *pkey;
    size_t sig_len; /* RSA: modulus bytes; EC: 64 (r || s) */
} jwk_t;

struct jwks {
    jwk_t *keys;
    size_t n;
};

/* Order of the P-256 group: r and s of a signature must lie in [1, n-1]. */
static const unsigned char p256_order[P256_BYTES] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
};

/* Header members that would make us fetch or trust key material named by the
 * token, or that announce extensions or encodings we do not implement. */
static const char *const header_refused[] = {
    "jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "crit", "b64", "zip", "enc", "cty",
};

/* Members only a private (or symmetric) JWK carries. */
static const char *const jwk_private[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

static void reason_set(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reason_set(char *buf, size_t len, const char *fmt, ...)
{
    if (buf == NULL || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Strict base64url (RFC 7515 section 2): no padding, nothing outside the
 * alphabet, and the unused low bits of the last character zero, so that each
 * byte string has exactly one encoding. The result is NUL-terminated (the
 * terminator is not counted) and belongs to the caller. */
static int b64url_decode(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (len % 4 == 1)
        return -1;
    unsigned char *buf = xmalloc(len / 4 * 3 + 3);
    size_t n = 0;
    unsigned int acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            goto fail;
        acc = (acc << 6) | (unsigned int)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        goto fail;
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;
fail:
    free(buf);
    return -1;
}

static int kid_valid(const char *s, size_t len)
{
    if (len < 1 || len > JWK_KID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* jansson refuses "\u0000" in strings (no JSON_ALLOW_NUL), so a JSON string
 * is a C string and length comparisons suffice. */
static int json_string_is(const json_t *v, const char *s)
{
    return json_is_string(v) && json_string_length(v) == strlen(s) &&
           memcmp(json_string_value(v), s, strlen(s)) == 0;
}

/* ------------------------------------------------------------------ JWKS */

static int file_read(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    *text = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        reason_set(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        reason_set(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > JWKS_MAX_FILE) {
        reason_set(err, errlen, "%s: not a regular file of at most %d bytes", path, JWKS_MAX_FILE);
        close(fd);
        return -1;
    }
    /* One byte more than the limit tells a file that grew since fstat. */
    char *buf = xmalloc(JWKS_MAX_FILE + 1);
    size_t n = 0;
    while (n <= JWKS_MAX_FILE) {
        ssize_t r = read(fd, buf + n, JWKS_MAX_FILE + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            reason_set(err, errlen, "%s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (n > JWKS_MAX_FILE) {
        reason_set(err, errlen, "%s: larger than %d bytes", path, JWKS_MAX_FILE);
        free(buf);
        return -1;
    }
    *text = buf;
    *len = n;
    return 0;
}

/* Decodes the base64url member name of jwk; NULL if absent or malformed. */
static unsigned char *jwk_bytes(const json_t *jwk, const char *name, size_t *len, char *why,
                                size_t whylen)
{
    const json_t *v = json_object_get(jwk, name);
    unsigned char *buf;
    if (!json_is_string(v)) {
        reason_set(why, whylen, "\"%s\" missing or not a string", name);
        return NULL;
    }
    if (b64url_decode(json_string_value(v), json_string_length(v), &buf, len) < 0 || *len == 0) {
        free(buf);
        reason_set(why, whylen, "\"%s\" is not base64url", name);
        return NULL;
    }
    return buf;
}

/* Builds a public EVP_PKEY of the named type from params and runs OpenSSL's
 * full public-key check on it (for EC: on the curve, right order). */
static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld, char *why, size_t whylen)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY_CTX *check = NULL;
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        reason_set(why, whylen, "%s public key invalid (refused by OpenSSL)", type);
        goto fail;
    }
    check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (check == NULL || EVP_PKEY_public_check(check) != 1) {
        reason_set(why, whylen, "%s public key invalid (fails OpenSSL's check)", type);
        goto fail;
    }
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
fail:
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return NULL;
}

static int jwk_rsa_load(const json_t *jwk, jwk_t *key, char *why, size_t whylen)
{
    int rc = -1;
    size_t nlen = 0, elen = 0;
    unsigned char *nb = NULL, *eb = NULL;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;

    if ((nb = jwk_bytes(jwk, "n", &nlen, why, whylen)) == NULL ||
        (eb = jwk_bytes(jwk, "e", &elen, why, whylen)) == NULL)
        goto done;
    if (elen > RSA_MAX_E_BYTES) {
        reason_set(why, whylen, "RSA exponent too large");
        goto done;
    }
    n = BN_bin2bn(nb, (int)nlen, NULL);
    e = BN_bin2bn(eb, (int)elen, NULL);
    if (n == NULL || e == NULL) {
        reason_set(why, whylen, "out of memory in OpenSSL");
        goto done;
    }
    int bits = BN_num_bits(n);
    if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
        reason_set(why, whylen, "RSA modulus of %d bits (need %d..%d)", bits, RSA_MIN_BITS,
                   RSA_MAX_BITS);
        goto done;
    }
    if (!BN_is_odd(e) || BN_is_one(e)) {
        reason_set(why, whylen, "RSA exponent invalid");
        goto done;
    }
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)) {
        reason_set(why, whylen, "out of memory in OpenSSL");
        goto done;
    }
    if ((key->pkey = pkey_from_params("RSA", bld, why, whylen)) == NULL)
        goto done;
    key->type = JWK_RSA;
    key->sig_len = (size_t)EVP_PKEY_get_size(key->pkey);
    rc = 0;
done:
    OSSL_PARAM_BLD_free(bld);
    BN_free(e);
    BN_free(n);
    free(eb);
    free(nb);
    return rc;
}

static int jwk_ec_load(const json_t *jwk, jwk_t *key, char *why, size_t whylen)
{
    int rc = -1;
    size_t xlen = 0, ylen = 0;
    unsigned char *x = NULL, *y = NULL;
    unsigned char point[1 + 2 * P256_BYTES];
    OSSL_PARAM_BLD *bld = NULL;

    if (!json_string_is(json_object_get(jwk, "crv"), "P-256")) {
        reason_set(why, whylen, "EC key not on curve P-256");
        goto done;
    }
    if ((x = jwk_bytes(jwk, "x", &xlen, why, whylen)) == NULL ||
        (y = jwk_bytes(jwk, "y", &ylen, why, whylen)) == NULL)
        goto done;
    if (xlen != P256_BYTES || ylen != P256_BYTES) {
        reason_set(why, whylen, "EC coordinates must be %d bytes each", P256_BYTES);
        goto done;
    }
    point[0] = POINT_CONVERSION_UNCOMPRESSED;
    memcpy(point + 1, x, P256_BYTES);
    memcpy(point + 1 + P256_BYTES, y, P256_BYTES);
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point)) {
        reason_set(why, whylen, "out of memory in OpenSSL");
        goto done;
    }
    if ((key->pkey = pkey_from_params("EC", bld, why, whylen)) == NULL)
        goto done;
    key->type = JWK_EC;
    key->sig_len = (size_t)2 * P256_BYTES;
    rc = 0;
done:
    OSSL_PARAM_BLD_free(bld);
    free(y);
    free(x);
    return rc;
}

static int jwk_load(const json_t *jwk, jwk_t *key, char *why, size_t whylen)
{
    if (!json_is_object(jwk)) {
        reason_set(why, whylen, "not a JSON object");
        return -1;
    }
    for (size_t i = 0; i < sizeof jwk_private / sizeof jwk_private[0]; i++) {
        if (json_object_get(jwk, jwk_private[i]) != NULL) {
            reason_set(why, whylen, "private key member \"%s\" refused", jwk_private[i]);
            return -1;
        }
    }
    const json_t *kid = json_object_get(jwk, "kid");
    if (!json_is_string(kid) || !kid_valid(json_string_value(kid), json_string_length(kid))) {
        reason_set(why, whylen, "\"kid\" missing or not 1..%d of [A-Za-z0-9._-]", JWK_KID_MAX);
        return -1;
    }
    memcpy(key->kid, json_string_value(kid), json_string_length(kid) + 1);

    const json_t *kty = json_object_get(jwk, "kty");
    jwk_type_t type;
    if (json_string_is(kty, "RSA"))
        type = JWK_RSA;
    else if (json_string_is(kty, "EC"))
        type = JWK_EC;
    else {
        reason_set(why, whylen, "\"kty\" must be RSA or EC");
        return -1;
    }
    const json_t *use = json_object_get(jwk, "use");
    if (use != NULL && !json_string_is(use, "sig")) {
        reason_set(why, whylen, "\"use\" must be \"sig\"");
        return -1;
    }
    const json_t *ops = json_object_get(jwk, "key_ops");
    if (ops != NULL) {
        int verify = 0;
        if (!json_is_array(ops)) {
            reason_set(why, whylen, "\"key_ops\" is not an array");
            return -1;
        }
        for (size_t i = 0; i < json_array_size(ops); i++)
            verify |= json_string_is(json_array_get(ops, i), "verify");
        if (!verify) {
            reason_set(why, whylen, "\"key_ops\" lacks \"verify\"");
            return -1;
        }
    }
    const json_t *alg = json_object_get(jwk, "alg");
    const char *pinned = type == JWK_RSA ? "RS256" : "ES256";
    if (alg != NULL && !json_string_is(alg, pinned)) {
        reason_set(why, whylen, "\"alg\" must be %s for this key type", pinned);
        return -1;
    }
    return type == JWK_RSA ? jwk_rsa_load(jwk, key, why, whylen)
                           : jwk_ec_load(jwk, key, why, whylen);
}

jwks_t *jwks_load(const char *path, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    json_t *root = NULL;
    jwks_t *set = NULL;
    int ok = 0;
    json_error_t jerr;
    char why[160];

    if (file_read(path, &text, &len, err, errlen) < 0)
        goto done;
    /* Flags 0 would allow duplicates; JSON_DISABLE_EOF_CHECK is not given, so
     * anything after the top-level value is refused too. */
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        reason_set(err, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
        goto done;
    }
    const json_t *keys = json_object_get(root, "keys");
    if (!json_is_object(root) || !json_is_array(keys)) {
        reason_set(err, errlen, "%s: not a JWKS (an object with a \"keys\" array)", path);
        goto done;
    }
    size_t count = json_array_size(keys);
    if (count < 1 || count > JWKS_MAX_KEYS) {
        reason_set(err, errlen, "%s: need 1..%d keys, found %zu", path, JWKS_MAX_KEYS, count);
        goto done;
    }
    set = xcalloc(1, sizeof *set);
    set->keys = xcalloc(count, sizeof *set->keys);
    for (size_t i = 0; i < count; i++) {
        jwk_t *key = &set->keys[i];
        ERR_set_mark();
        int rc = jwk_load(json_array_get(keys, i), key, why, sizeof why);
        ERR_pop_to_mark();
        if (rc < 0) {
            reason_set(err, errlen, "%s: key %zu: %s", path, i, why);
            goto done;
        }
        set->n++;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(set->keys[j].kid, key->kid) == 0) {
                reason_set(err, errlen, "%s: key %zu: duplicate kid \"%s\"", path, i, key->kid);
                goto done;
            }
        }
    }
    ok = 1;
done:
    if (!ok) {
        jwks_free(set);
        set = NULL;
    }
    json_decref(root);
    free(text);
    return set;
}

void jwks_free(jwks_t *keys)
{
    if (keys == NULL)
        return;
    for (size_t i = 0; i < keys->n; i++)
        EVP_PKEY_free(keys->keys[i].pkey);
    free(keys->keys);
    free(keys);
}

size_t jwks_count(const jwks_t *keys)
{
    return keys == NULL ? 0 : keys->n;
}

/* ---------------------------------------------------------------- tokens */

static int policy_check(const jwt_policy_t *p, char *why, size_t whylen)
{
    if (p == NULL || p->issuer == NULL || p->issuer[0] == '\0' || p->audience == NULL ||
        p->audience[0] == '\0' || p->skew < 0 || p->skew > JWT_SKEW_MAX || p->max_len == 0 ||
        p->now < 0 || p->now > JWT_TIME_MAX) {
        reason_set(why, whylen, "policy incomplete");
        return -1;
    }
    return 0;
}

/* Checks the protected header and returns the key it names, pinned to the
 * algorithm the key's type allows. */
static const jwk_t *header_check(const jwks_t *keys, const unsigned char *text, size_t len,
                                 char *why, size_t whylen)
{
    const jwk_t *found = NULL;
    json_error_t jerr;
    json_t *h = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (h == NULL) {
        /* jerr.text may quote the token: give only its kind. */
        reason_set(why, whylen, "%s",
                   json_error_code(&jerr) == json_error_duplicate_key ? "header: duplicate member"
                                                                      : "header: not JSON");
        return NULL;
    }
    if (!json_is_object(h)) {
        reason_set(why, whylen, "header: not a JSON object");
        goto done;
    }
    for (size_t i = 0; i < sizeof header_refused / sizeof header_refused[0]; i++) {
        if (json_object_get(h, header_refused[i]) != NULL) {
            reason_set(why, whylen, "header: \"%s\" refused", header_refused[i]);
            goto done;
        }
    }
    const json_t *alg = json_object_get(h, "alg");
    int rs256 = json_string_is(alg, "RS256"), es256 = json_string_is(alg, "ES256");
    if (!rs256 && !es256) {
        reason_set(why, whylen, "header: alg not RS256 or ES256");
        goto done;
    }
    const json_t *typ = json_object_get(h, "typ");
    if (typ != NULL && !(json_is_string(typ) && strcasecmp(json_string_value(typ), "JWT") == 0)) {
        reason_set(why, whylen, "header: typ not JWT");
        goto done;
    }
    const json_t *kid = json_object_get(h, "kid");
    if (!json_is_string(kid) || !kid_valid(json_string_value(kid), json_string_length(kid))) {
        reason_set(why, whylen, "header: kid missing or malformed");
        goto done;
    }
    const jwk_t *key = NULL;
    for (size_t i = 0; i < keys->n && key == NULL; i++) {
        if (strcmp(keys->keys[i].kid, json_string_value(kid)) == 0)
            key = &keys->keys[i];
    }
    if (key == NULL) {
        reason_set(why, whylen, "header: unknown kid");
        goto done;
    }
    if ((key->type == JWK_RSA && !rs256) || (key->type == JWK_EC && !es256)) {
        reason_set(why, whylen, "header: alg does not match the key's type");
        goto done;
    }
    found = key;
done:
    json_decref(h);
    return found;
}

/* 1 when the big-endian 32-byte scalar is in [1, n-1] of P-256. */
static int p256_scalar_valid(const unsigned char *v)
{
    unsigned char any = 0;
    for (size_t i = 0; i < P256_BYTES; i++)
        any |= v[i];
    return any != 0 && memcmp(v, p256_order, P256_BYTES) < 0;
}

/* The JWS raw r || s becomes the DER ECDSA-Sig-Value OpenSSL verifies. */
static unsigned char *ecdsa_der(const unsigned char *sig, size_t *derlen)
{
    unsigned char *der = NULL;
    BIGNUM *r = BN_bin2bn(sig, P256_BYTES, NULL);
    BIGNUM *s = BN_bin2bn(sig + P256_BYTES, P256_BYTES, NULL);
    ECDSA_SIG *es = ECDSA_SIG_new();
    if (r == NULL || s == NULL || es == NULL || !ECDSA_SIG_set0(es, r, s))
        goto done;
    r = s = NULL; /* owned by es now */
    int n = i2d_ECDSA_SIG(es, &der);
    if (n <= 0) {
        der = NULL;
        goto done;
    }
    *derlen = (size_t)n;
done:
    ECDSA_SIG_free(es);
    BN_free(s);
    BN_free(r);
    return der;
}

static int signature_check(const jwk_t *key, const char *input, size_t input_len,
                           const unsigned char *sig, size_t sig_len, char *why, size_t whylen)
{
    int rc = -1;
    unsigned char *der = NULL;
    size_t der_len = 0;
    EVP_MD_CTX *md = NULL;
    EVP_PKEY_CTX *pctx = NULL;

    if (sig_len != key->sig_len) {
        reason_set(why, whylen, "signature: %zu bytes, key needs %zu", sig_len, key->sig_len);
        return -1;
    }
    ERR_set_mark();
    if (key->type == JWK_EC) {
        if (!p256_scalar_valid(sig) || !p256_scalar_valid(sig + P256_BYTES)) {
            reason_set(why, whylen, "signature: r or s out of range");
            goto done;
        }
        if ((der = ecdsa_der(sig, &der_len)) == NULL) {
            reason_set(why, whylen, "signature: cannot encode r and s");
            goto done;
        }
        sig = der;
        sig_len = der_len;
    }
    md = EVP_MD_CTX_new();
    if (md == NULL ||
        EVP_DigestVerifyInit_ex(md, &pctx, "SHA256", NULL, NULL, key->pkey, NULL) != 1 ||
        (key->type == JWK_RSA && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)) {
        reason_set(why, whylen, "signature: OpenSSL cannot verify");
        goto done;
    }
    if (EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)input, input_len) != 1) {
        reason_set(why, whylen, "signature: does not verify");
        goto done;
    }
    rc = 0;
done:
    EVP_MD_CTX_free(md); /* frees pctx too */
    OPENSSL_free(der);
    ERR_pop_to_mark();
    return rc;
}

/* No C0 control character or DEL: claim values reach log lines and XML. */
static int text_printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

/* Copies string claim name into dst (size dstsize) when it has minlen..dstsize-1
 * bytes and no control character. */
static int claim_string(const json_t *claims, const char *name, int required, size_t minlen,
                        char *dst, size_t dstsize, char *why, size_t whylen)
{
    const json_t *v = json_object_get(claims, name);
    dst[0] = '\0';
    if (v == NULL) {
        if (!required)
            return 0;
        reason_set(why, whylen, "claim %s missing", name);
        return -1;
    }
    if (!json_is_string(v)) {
        reason_set(why, whylen, "claim %s not a string", name);
        return -1;
    }
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    if (len < minlen || len >= dstsize) {
        reason_set(why, whylen, "claim %s length %zu not in %zu..%zu", name, len, minlen,
                   dstsize - 1);
        return -1;
    }
    if (!text_printable(s, len)) {
        reason_set(why, whylen, "claim %s has a control character", name);
        return -1;
    }
    memcpy(dst, s, len + 1);
    return 0;
}

/* NumericDate (RFC 7519: seconds, possibly with a fraction, as many
 * libraries write time() + n). A fraction is rounded to the safe side:
 * up for nbf (valid no earlier), down for exp and iat. */
static int claim_time(const json_t *claims, const char *name, int required, int round_up,
                      long long *dst, char *why, size_t whylen)
{
    const json_t *v = json_object_get(claims, name);
    *dst = 0;
    if (v == NULL) {
        if (!required)
            return 0;
        reason_set(why, whylen, "claim %s missing", name);
        return -1;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= JWT_TIME_MAX) {
        *dst = json_integer_value(v);
        return 0;
    }
    double d = json_is_real(v) ? json_real_value(v) : -1.0;
    if (!(d >= 0.0 && d <= (double)JWT_TIME_MAX)) {
        reason_set(why, whylen, "claim %s not a date", name);
        return -1;
    }
    *dst = (long long)(round_up ? ceil(d) : floor(d));
    return 0;
}

static int audience_check(const json_t *aud, const char *audience)
{
    if (json_is_string(aud))
        return json_string_is(aud, audience) ? 0 : -1;
    if (!json_is_array(aud))
        return -1;
    int match = 0;
    for (size_t i = 0; i < json_array_size(aud); i++) {
        const json_t *v = json_array_get(aud, i);
        if (!json_is_string(v))
            return -1;
        match |= json_string_is(v, audience);
    }
    return match ? 0 : -1;
}

static int claims_read(const json_t *c, const jwt_policy_t *p, jwt_claims_t *out, char *why,
                       size_t whylen)
{
    if (!json_string_is(json_object_get(c, "iss"), p->issuer)) {
        reason_set(why, whylen, "claim iss missing or not the trusted issuer");
        return -1;
    }
    if (audience_check(json_object_get(c, "aud"), p->audience) < 0) {
        reason_set(why, whylen, "claim aud missing or not ours");
        return -1;
    }
    if (claim_time(c, "exp", 1, 0, &out->exp, why, whylen) < 0 ||
        claim_time(c, "nbf", 0, 1, &out->nbf, why, whylen) < 0 ||
        claim_time(c, "iat", 0, 0, &out->iat, why, whylen) < 0)
        return -1;
    if (!(p->now < out->exp + p->skew)) {
        reason_set(why, whylen, "token expired");
        return -1;
    }
    if (json_object_get(c, "nbf") != NULL && !(p->now >= out->nbf - p->skew)) {
        reason_set(why, whylen, "token not yet valid (nbf)");
        return -1;
    }
    if (claim_string(c, "sub", 1, 1, out->sub, sizeof out->sub, why, whylen) < 0 ||
        claim_string(c, "name", 0, 0, out->name, sizeof out->name, why, whylen) < 0 ||
        claim_string(c, "unit", 1, 1, out->unit, sizeof out->unit, why, whylen) < 0 ||
        claim_string(c, "region", 1, 1, out->region, sizeof out->region, why, whylen) < 0)
        return -1;

    const json_t *roles = json_object_get(c, "roles");
    if (!json_is_array(roles)) {
        reason_set(why, whylen, "claim roles missing or not an array");
        return -1;
    }
    if (json_array_size(roles) > JWT_MAX_ROLES) {
        reason_set(why, whylen, "claim roles has more than %d entries", JWT_MAX_ROLES);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(roles); i++) {
        const json_t *role = json_array_get(roles, i);
        if (!json_is_string(role)) {
            reason_set(why, whylen, "claim roles has a non-string entry");
            return -1;
        }
        size_t len = json_string_length(role);
        const char *s = json_string_value(role);
        if (len < 1 || len >= sizeof out->roles[0]) {
            reason_set(why, whylen, "claim roles entry length %zu not in 1..%zu", len,
                       sizeof out->roles[0] - 1);
            return -1;
        }
        if (!text_printable(s, len)) {
            reason_set(why, whylen, "claim roles entry has a control character");
            return -1;
        }
        memcpy(out->roles[i], s, len + 1);
        out->nroles++;
    }

    const json_t *clearance = json_object_get(c, "clearance");
    if (clearance != NULL && !json_is_string(clearance)) {
        reason_set(why, whylen, "claim clearance not a string");
        return -1;
    }
    out->classified = json_string_is(clearance, "classified");
    return 0;
}

int jwt_verify(const jwks_t *keys, const jwt_policy_t *policy, const char *token, size_t len,
               jwt_claims_t *out, char *why, size_t whylen)
{
    int rc = -1;
    unsigned char *header = NULL, *sig = NULL, *payload = NULL;
    size_t header_len = 0, sig_len = 0, payload_len = 0;
    json_t *claims = NULL;

    reason_set(why, whylen, "%s", "");
    if (out == NULL) {
        reason_set(why, whylen, "no claims buffer");
        return -1;
    }
    memset(out, 0, sizeof *out);
    if (policy_check(policy, why, whylen) < 0)
        goto done;
    if (keys == NULL || keys->n == 0) {
        reason_set(why, whylen, "no keys");
        goto done;
    }
    if (token == NULL || len == 0) {
        reason_set(why, whylen, "empty token");
        goto done;
    }
    /* Before anything else looks at the bytes: bounds the work per request. */
    if (len > policy->max_len) {
        reason_set(why, whylen, "token longer than %zu bytes", policy->max_len);
        goto done;
    }
    size_t dot[2], ndots = 0;
    for (size_t i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (ndots == 2) {
                reason_set(why, whylen, "token: more than three segments");
                goto done;
            }
            dot[ndots++] = i;
        } else if (b64url_value((unsigned char)token[i]) < 0) {
            reason_set(why, whylen, "token: byte outside base64url at offset %zu", i);
            goto done;
        }
    }
    if (ndots != 2) {
        reason_set(why, whylen, "token: not three segments");
        goto done;
    }
    const char *seg_header = token, *seg_payload = token + dot[0] + 1,
               *seg_sig = token + dot[1] + 1;
    size_t header_b64 = dot[0], payload_b64 = dot[1] - dot[0] - 1, sig_b64 = len - dot[1] - 1;
    if (header_b64 == 0 || payload_b64 == 0 || sig_b64 == 0) {
        reason_set(why, whylen, "token: empty segment");
        goto done;
    }
    if (b64url_decode(seg_header, header_b64, &header, &header_len) < 0 ||
        b64url_decode(seg_sig, sig_b64, &sig, &sig_len) < 0) {
        reason_set(why, whylen, "token: header or signature not strict base64url");
        goto done;
    }
    const jwk_t *key = header_check(keys, header, header_len, why, whylen);
    if (key == NULL)
        goto done;
    if (signature_check(key, token, dot[1], sig, sig_len, why, whylen) < 0)
        goto done;

    /* Only now, with the signature good, is the payload looked at. */
    if (b64url_decode(seg_payload, payload_b64, &payload, &payload_len) < 0) {
        reason_set(why, whylen, "token: payload not strict base64url");
        goto done;
    }
    json_error_t jerr;
    claims = json_loadb((const char *)payload, payload_len, JSON_REJECT_DUPLICATES, &jerr);
    if (claims == NULL) {
        reason_set(why, whylen, "%s",
                   json_error_code(&jerr) == json_error_duplicate_key ? "claims: duplicate member"
                                                                      : "claims: not JSON");
        goto done;
    }
    if (!json_is_object(claims)) {
        reason_set(why, whylen, "claims: not a JSON object");
        goto done;
    }
    if (claims_read(claims, policy, out, why, whylen) < 0)
        goto done;
    rc = 0;
done:
    if (rc < 0)
        memset(out, 0, sizeof *out);
    json_decref(claims);
    free(payload);
    free(sig);
    free(header);
    return rc;
}
