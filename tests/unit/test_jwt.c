/* jwt.c against golden vectors made by independent tools (openssl, PyJWT:
 * tests/unit/jwt_vectors/make.sh), plus tokens assembled here for the rules
 * that are checked before the signature (shape, base64url, header). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "auth/jwt.h"

#ifndef ITPM_SOURCE_DIR
#error "ITPM_SOURCE_DIR must name the repository root"
#endif
#define VECTORS ITPM_SOURCE_DIR "/tests/unit/jwt_vectors/"

#define ISSUER "https://sso.example.gov"
#define AUDIENCE "itpm"
#define NOW 1795000000LL      /* 2026-11-18: between the vectors' nbf and exp */
#define EXP_2100 4102444800LL /* exp of the valid vectors */
#define NBF_VALID 1764000000LL
#define EXP_EXPIRED 1600000000LL

static jwks_t *keys;

static jwt_policy_t policy_default(void)
{
    jwt_policy_t p = {
        .issuer = ISSUER, .audience = AUDIENCE, .now = NOW, .skew = 60, .max_len = 8192};
    return p;
}

static char *file_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 4096) {
            cap = cap * 2 + 4096;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static char *token_read(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, VECTORS "tokens/%s.jwt", name);
    return file_slurp(path, len);
}

/* Minimal base64url encoder for tokens assembled in the tests. */
static char *b64url(const void *data, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = data;
    char *out = malloc(len / 3 * 4 + 5);
    assert_non_null(out);
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = abc[v >> 6 & 63];
        out[o++] = abc[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = abc[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

/* Segment n (0..2) of a token, as a new string. */
static char *segment(const char *token, int n)
{
    const char *s = token;
    for (int i = 0; i < n; i++) {
        s = strchr(s, '.');
        assert_non_null(s);
        s++;
    }
    size_t len = strcspn(s, ".");
    char *out = malloc(len + 1);
    assert_non_null(out);
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

static char *join3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%s.%s.%s", a, b, c);
    return out;
}

/* Runs jwt_verify on text with policy p; on refusal checks that the reason
 * contains expect (so a test fails if the token is refused for another rule). */
static void expect_with(const jwt_policy_t *p, const char *text, size_t len, const char *expect)
{
    jwt_claims_t c;
    char why[160];
    memset(&c, 0xA5, sizeof c);
    int rc = jwt_verify(keys, p, text, len, &c, why, sizeof why);
    if (expect == NULL) {
        if (rc != 0)
            fail_msg("refused: %s", why);
        return;
    }
    if (rc == 0)
        fail_msg("accepted; expected refusal \"%s\"", expect);
    assert_int_equal(rc, -1);
    if (strstr(why, expect) == NULL)
        fail_msg("refused for \"%s\", expected \"%s\"", why, expect);
    /* Nothing half-filled escapes a refusal. */
    static const jwt_claims_t zero;
    assert_memory_equal(&c, &zero, sizeof c);
}

static void expect_str(const char *text, const char *expect)
{
    jwt_policy_t p = policy_default();
    expect_with(&p, text, strlen(text), expect);
}

static void expect_vector(const char *name, const char *expect)
{
    size_t len;
    char *t = token_read(name, &len);
    jwt_policy_t p = policy_default();
    expect_with(&p, t, len, expect);
    free(t);
}

static int group_setup(void **state)
{
    (void)state;
    char err[256];
    keys = jwks_load(VECTORS "jwks.json", err, sizeof err);
    if (keys == NULL) {
        fprintf(stderr, "jwks.json: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    jwks_free(keys);
    keys = NULL;
    return 0;
}

/* ------------------------------------------------------------------ JWKS */

static void test_jwks_loads_rsa_and_ec(void **state)
{
    (void)state;
    assert_int_equal(jwks_count(keys), 2);
    assert_int_equal(jwks_count(NULL), 0);
    jwks_free(NULL);
}

static void test_jwks_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *file, *expect;
    } cases[] = {
        {"jwks-bad-json.json", "jwks-bad-json.json:1:"},
        {"jwks-trailing.json", "end of file expected"},
        {"jwks-not-object.json", "not a JWKS"},
        {"jwks-empty.json", "need 1..64 keys"},
        {"jwks-dup-kid.json", "duplicate kid \"rsa-2026-1\""},
        {"jwks-dup-member.json", "duplicate object key"},
        {"jwks-rsa-1024.json", "RSA modulus of 1024 bits"},
        {"jwks-p384.json", "not on curve P-256"},
        {"jwks-p384-as-p256.json", "must be 32 bytes"},
        {"jwks-ec-short-x.json", "must be 32 bytes"},
        {"jwks-ec-off-curve.json", "EC public key invalid"},
        {"jwks-rsa-even-n.json", "RSA public key invalid"},
        {"jwks-rsa-e1.json", "RSA exponent invalid"},
        {"jwks-private-rsa.json", "private key member \"d\""},
        {"jwks-private-ec.json", "private key member \"d\""},
        {"jwks-oct.json", "private key member \"k\""},
        {"jwks-alg-mismatch.json", "\"alg\" must be RS256"},
        {"jwks-alg-hs256.json", "\"alg\" must be RS256"},
        {"jwks-use-enc.json", "\"use\" must be \"sig\""},
        {"jwks-no-kid.json", "\"kid\" missing"},
        {"jwks-bad-kid.json", "\"kid\" missing or not"},
        {"jwks-b64-padded.json", "\"e\" is not base64url"},
        {"no-such-file.json", "No such file"},
        {"tokens", "not a regular file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[512], err[256] = "";
        snprintf(path, sizeof path, VECTORS "%s", cases[i].file);
        jwks_t *k = jwks_load(path, err, sizeof err);
        if (k != NULL) {
            jwks_free(k);
            fail_msg("%s accepted", cases[i].file);
        }
        if (strstr(err, cases[i].expect) == NULL)
            fail_msg("%s refused for \"%s\", expected \"%s\"", cases[i].file, err, cases[i].expect);
    }
}

/* ------------------------------------------------------------ valid ones */

static void test_valid_rs256_claims(void **state)
{
    (void)state;
    size_t len;
    char *t = token_read("rs256_valid", &len);
    jwt_policy_t p = policy_default();
    jwt_claims_t c;
    char why[160];
    assert_int_equal(jwt_verify(keys, &p, t, len, &c, why, sizeof why), 0);
    assert_string_equal(c.sub, "jdoe");
    assert_string_equal(c.name, "Jane Doe");
    assert_string_equal(c.unit, "U-0042");
    assert_string_equal(c.region, "CITY");
    assert_int_equal(c.nroles, 2);
    assert_string_equal(c.roles[0], "submitter");
    assert_string_equal(c.roles[1], "cdo");
    assert_int_equal(c.classified, 0);
    assert_int_equal(c.exp, EXP_2100);
    assert_int_equal(c.nbf, NBF_VALID);
    assert_int_equal(c.iat, 1764000000LL);
    free(t);
}

static void test_valid_es256_claims(void **state)
{
    (void)state;
    size_t len;
    char *t = token_read("es256_valid", &len);
    jwt_policy_t p = policy_default();
    jwt_claims_t c;
    char why[160];
    assert_int_equal(jwt_verify(keys, &p, t, len, &c, why, sizeof why), 0);
    assert_string_equal(c.sub, "jdoe");
    assert_string_equal(c.name, "");
    assert_string_equal(c.region, "C01");
    assert_int_equal(c.nroles, 1);
    assert_string_equal(c.roles[0], "reviewer");
    assert_int_equal(c.classified, 1); /* and aud was an array holding ours */
    assert_int_equal(c.nbf, 0);
    free(t);
}

static void test_valid_minimal(void **state)
{
    (void)state;
    size_t len;
    char *t = token_read("rs256_minimal", &len);
    jwt_policy_t p = policy_default();
    jwt_claims_t c;
    char why[160];
    assert_int_equal(jwt_verify(keys, &p, t, len, &c, why, sizeof why), 0);
    assert_string_equal(c.sub, "m");
    assert_string_equal(c.name, "");
    assert_int_equal(c.nroles, 0);
    assert_int_equal(c.classified, 0);
    assert_int_equal(c.iat, 0);
    free(t);
}

static void test_valid_variants(void **state)
{
    (void)state;
    expect_vector("es256_raw_check", NULL);
    expect_vector("typ_lowercase", NULL);
    expect_vector("no_typ", NULL);
    expect_vector("roles_max", NULL); /* 16 roles of 32 chars */
    expect_vector("sub_max", NULL);   /* sub/name 128, unit 32, region 8 */
    expect_vector("clearance_other", NULL);
}

static void test_valid_against_real_clock(void **state)
{
    (void)state;
    size_t len;
    char *t = token_read("es256_valid", &len);
    jwt_policy_t p = policy_default();
    p.now = (long long)time(NULL);
    expect_with(&p, t, len, NULL);
    free(t);
}

/* --------------------------------------------------- algorithm and header */

static void test_alg_refusals(void **state)
{
    (void)state;
    expect_vector("alg_none", "empty segment");
    expect_vector("alg_none_sig", "alg not RS256 or ES256");
    expect_vector("hs256_pubkey", "alg not RS256 or ES256");
    expect_vector("rs384", "alg not RS256 or ES256");
    expect_vector("ps256", "alg not RS256 or ES256");
    expect_vector("alg_lowercase", "alg not RS256 or ES256");
    expect_vector("es256_with_rsa_kid", "alg does not match");
    expect_vector("rs256_with_ec_kid", "alg does not match");
}

static void test_kid_refusals(void **state)
{
    (void)state;
    expect_vector("unknown_kid", "unknown kid");
    expect_vector("no_kid", "kid missing");
    expect_vector("kid_traversal", "kid missing or malformed");
    expect_vector("kid_sqli", "kid missing or malformed");
}

static void test_header_members_refused(void **state)
{
    (void)state;
    expect_vector("header_jku", "\"jku\" refused");
    expect_vector("header_x5u", "\"x5u\" refused");
    expect_vector("header_jwk", "\"jwk\" refused");
    expect_vector("header_x5c", "\"x5c\" refused");
    expect_vector("header_x5t", "\"x5t\" refused");
    expect_vector("header_crit", "\"crit\" refused");
    expect_vector("header_crit_empty", "\"crit\" refused");
    expect_vector("typ_wrong", "typ not JWT");
}

static void test_duplicate_members(void **state)
{
    (void)state;
    expect_vector("dup_alg", "header: duplicate member");
    expect_vector("dup_claim", "claims: duplicate member");
    expect_vector("dup_nested", "claims: duplicate member");
}

/* Header rules fire before the signature, so these need no valid one. */
static void test_header_shapes(void **state)
{
    (void)state;
    static const struct {
        const char *json, *expect;
    } cases[] = {
        {"[]", "header: not a JSON object"},
        {"\"RS256\"", "header: not JSON"},
        {"{\"alg\":\"RS256\",\"kid\":\"rsa-2026-1\"} x", "header: not JSON"},
        {"{\"alg\":\"RS256\",\"kid\":\"rsa-2026-1\"", "header: not JSON"},
        {"{}", "alg not RS256"},
        {"{\"alg\":[\"RS256\"],\"kid\":\"rsa-2026-1\"}", "alg not RS256"},
        {"{\"alg\":\"RS256 \",\"kid\":\"rsa-2026-1\"}", "alg not RS256"},
        {"{\"alg\":\"RS256\",\"kid\":\"rsa-2026-1\",\"typ\":5}", "typ not JWT"},
        {"{\"alg\":\"RS256\",\"kid\":\"rsa-2026-1\",\"typ\":\"JWS\"}", "typ not JWT"},
        {"{\"alg\":\"RS256\",\"kid\":7}", "kid missing or malformed"},
        {"{\"alg\":\"RS256\",\"kid\":\"\"}", "kid missing or malformed"},
        {"{\"alg\":\"RS256\",\"kid\":"
         "\"a123456789b123456789c123456789d123456789e123456789f123456789g1234\"}",
         "kid missing or malformed"},
        {"{\"alg\":\"RS256\",\"kid\":\"rsa-2026-1\",\"x5t#S256\":\"x\"}", "\"x5t#S256\" refused"},
        {"{\"alg\":\"RS256\",\"kid\":\"rsa-2026-1\",\"b64\":false}", "\"b64\" refused"},
        {"{\"alg\":\"RS256\",\"kid\":\"rsa-2026-1\",\"cty\":\"JWT\"}", "\"cty\" refused"},
        {"{\"alg\":\"RS256\",\"kid\":\"rsa-2026-1\",\"kid\":\"ec-2026-1\"}",
         "header: duplicate member"},
        {"{\"alg\":\"RS256\",\"kid\":\"rsa-2026-1\",\"x\":{\"a\":1,\"a\":1}}",
         "header: duplicate member"},
        {"{\"alg\":\"RS256\",\"kid\":\"rsa-2026-1\",\"x\":\"\\u0000\"}", "header: not JSON"},
        {"{\"alg\":\"RS256\",\"kid\":\"rsa-2026-1\",\"x\":\"\xff\"}", "header: not JSON"},
    };
    size_t len;
    char *valid = token_read("rs256_valid", &len);
    char *payload = segment(valid, 1), *sig = segment(valid, 2);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *h = b64url(cases[i].json, strlen(cases[i].json));
        char *t = join3(h, payload, sig);
        expect_str(t, cases[i].expect);
        free(t);
        free(h);
    }
    /* The real header re-encoded the same way is accepted: the harness is sound. */
    char *h = segment(valid, 0);
    char *t = join3(h, payload, sig);
    expect_str(t, NULL);
    free(t);
    free(h);
    free(sig);
    free(payload);
    free(valid);
}

/* -------------------------------------------------------------- signature */

static void test_signature_refusals(void **state)
{
    (void)state;
    expect_vector("es256_zero_sig", "r or s out of range");
    expect_vector("es256_r_eq_n", "r or s out of range");
    expect_vector("es256_der", "signature: "); /* DER length is not 64 */
    expect_vector("tampered", "signature: does not verify");
}

static void test_es256_der_is_length(void **state)
{
    (void)state;
    size_t len;
    char *t = token_read("es256_der", &len);
    jwt_policy_t p = policy_default();
    jwt_claims_t c;
    char why[160];
    assert_int_equal(jwt_verify(keys, &p, t, len, &c, why, sizeof why), -1);
    assert_non_null(strstr(why, "key needs 64"));
    free(t);
}

static void sig_with(const char *vector, const unsigned char *sig, size_t siglen,
                     const char *expect)
{
    size_t len;
    char *valid = token_read(vector, &len);
    char *h = segment(valid, 0), *p = segment(valid, 1), *s = b64url(sig, siglen);
    char *t = join3(h, p, s);
    expect_str(t, expect);
    free(t);
    free(s);
    free(p);
    free(h);
    free(valid);
}

static void test_signature_lengths_and_ranges(void **state)
{
    (void)state;
    static const unsigned char n[32] = {
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17,
        0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
    };
    unsigned char sig[300];
    memset(sig, 0x42, sizeof sig);
    sig_with("rs256_valid", sig, 255, "signature: 255 bytes, key needs 256");
    sig_with("rs256_valid", sig, 257, "signature: 257 bytes, key needs 256");
    sig_with("rs256_valid", sig, 256, "does not verify");
    sig_with("es256_valid", sig, 63, "signature: 63 bytes, key needs 64");
    sig_with("es256_valid", sig, 65, "signature: 65 bytes, key needs 64");
    sig_with("es256_valid", sig, 64, "does not verify");
    /* r = 0 alone, s = 0 alone, s = n, r = n - 1 (in range) */
    memset(sig, 0, 32);
    sig_with("es256_valid", sig, 64, "r or s out of range");
    memset(sig, 0x42, 32);
    memset(sig + 32, 0, 32);
    sig_with("es256_valid", sig, 64, "r or s out of range");
    memcpy(sig + 32, n, 32);
    sig_with("es256_valid", sig, 64, "r or s out of range");
    memset(sig + 32, 0xFF, 32);
    sig_with("es256_valid", sig, 64, "r or s out of range");
    memcpy(sig, n, 32);
    sig[31] -= 1;
    memset(sig + 32, 0, 31);
    sig[63] = 1;
    sig_with("es256_valid", sig, 64, "does not verify");
}

/* The payload is not even decoded before the signature holds: a payload that
 * is garbage, or that would be refused as expired, fails on the signature. */
static void test_signature_before_claims(void **state)
{
    (void)state;
    size_t len;
    char *valid = token_read("rs256_valid", &len), *expired = token_read("expired", &len);
    char *h = segment(valid, 0), *s = segment(valid, 2);
    char *garbage = b64url("not json", 8), *exp_payload = segment(expired, 1);
    char *t1 = join3(h, garbage, s), *t2 = join3(h, exp_payload, s);
    char *t3 = join3(h, "A", s); /* not even base64url: 1 char */
    expect_str(t1, "signature: does not verify");
    expect_str(t2, "signature: does not verify");
    expect_str(t3, "signature: does not verify");
    free(t3);
    free(t2);
    free(t1);
    free(exp_payload);
    free(garbage);
    free(s);
    free(h);
    free(expired);
    free(valid);
}

/* ------------------------------------------------------ shape and base64 */

static void test_shape_refusals(void **state)
{
    (void)state;
    size_t len;
    char *t = token_read("rs256_valid", &len);
    char buf[8192];
    assert_true(len + 16 < sizeof buf);
    jwt_policy_t p = policy_default();

    const char *second = strrchr(t, '.');
    expect_with(&p, t, (size_t)(second - t), "not three segments");
    snprintf(buf, sizeof buf, "%s.AAAA", t);
    expect_str(buf, "more than three segments");
    snprintf(buf, sizeof buf, " %s", t);
    expect_str(buf, "outside base64url at offset 0");
    snprintf(buf, sizeof buf, "%s\n", t);
    expect_str(buf, "outside base64url");
    snprintf(buf, sizeof buf, "%s\r\n", t);
    expect_str(buf, "outside base64url");
    memcpy(buf, t, len + 1);
    buf[strchr(t, '.') - t + 1] = ' ';
    expect_str(buf, "outside base64url");
    buf[strchr(t, '.') - t + 1] = '\t';
    expect_str(buf, "outside base64url");
    memcpy(buf, t, len + 1);
    buf[10] = '\0'; /* embedded NUL, length unchanged */
    expect_with(&p, buf, len, "outside base64url at offset 10");
    expect_str("..", "empty segment");
    expect_str("a..b", "empty segment");
    expect_str("", "empty token");
    expect_with(&p, NULL, 0, "empty token");
    free(t);
}

static void test_base64url_strict(void **state)
{
    (void)state;
    size_t len;
    char buf[8192];
    const char *vectors[] = {"rs256_valid", "es256_valid"};
    for (size_t v = 0; v < 2; v++) {
        char *t = token_read(vectors[v], &len);
        assert_true(len < sizeof buf);
        /* Signature of 256 or 64 bytes: 4 unused bits in its last character. */
        char *s = segment(t, 2);
        size_t sl = strlen(s);
        assert_int_equal(sl % 4, 2);
        assert_non_null(strchr("AQgw", s[sl - 1]));
        memcpy(buf, t, len + 1);
        buf[len - 1] = s[sl - 1] == 'w' ? 'x' : (char)(s[sl - 1] + 1);
        expect_str(buf, "not strict base64url");
        /* Drop one character: a length of 4k+1 never decodes. */
        buf[len - 1] = '\0';
        expect_str(buf, "not strict base64url");
        /* '+' and '/' are base64, not base64url. */
        memcpy(buf, t, len + 1);
        buf[len - 5] = '+';
        expect_str(buf, "outside base64url");
        buf[len - 5] = '/';
        expect_str(buf, "outside base64url");
        free(s);
        free(t);
    }
    expect_vector("bad_b64_padded", "outside base64url");
    /* Non-canonical trailing bits in the header: "{}" is e30, e31 is not canonical. */
    expect_str("e31.e30.AAAA", "not strict base64url");
    expect_str("e30.e30.AAAA", "alg not");
}

static void test_length_limit(void **state)
{
    (void)state;
    size_t len;
    char *t = token_read("rs256_valid", &len);
    jwt_policy_t p = policy_default();
    p.max_len = len;
    expect_with(&p, t, len, NULL);
    p.max_len = len - 1;
    expect_with(&p, t, len, "longer than");
    free(t);
    /* A validly signed token over 8 KB is refused before any decoding. */
    char *big = token_read("oversize", &len);
    assert_true(len > 8192);
    p = policy_default();
    expect_with(&p, big, len, "token longer than 8192 bytes");
    /* Garbage beyond the limit is refused for its length, not its content. */
    memset(big, ' ', len);
    expect_with(&p, big, len, "token longer than 8192 bytes");
    free(big);
}

/* ----------------------------------------------------------------- claims */

static void test_claims_iss_aud(void **state)
{
    (void)state;
    expect_vector("wrong_iss", "iss");
    expect_vector("missing_iss", "iss");
    expect_vector("wrong_aud", "aud");
    expect_vector("aud_array_without", "aud");
    expect_vector("missing_aud", "aud");
}

static void test_claims_times(void **state)
{
    (void)state;
    expect_vector("expired", "token expired");
    expect_vector("not_yet_valid", "not yet valid");
    expect_vector("missing_exp", "exp missing");
    expect_vector("exp_string", "exp not a date");
    expect_vector("exp_negative", "exp not a date");
    expect_vector("nbf_string", "nbf not a date");
    expect_vector("iat_string", "iat not a date");
}

/* A NumericDate with a fraction (RFC 7519) is read, exp rounded down and
 * nbf up. */
static void test_claims_real_exp(void **state)
{
    (void)state;
    size_t len;
    char *t = token_read("exp_real", &len);
    jwt_policy_t p = policy_default();
    jwt_claims_t c;
    char why[160];
    assert_int_equal(jwt_verify(keys, &p, t, len, &c, why, sizeof why), 0);
    assert_true(c.exp == EXP_2100);
    p.skew = 0;
    p.now = EXP_2100;
    assert_int_equal(jwt_verify(keys, &p, t, len, &c, why, sizeof why), -1);
    free(t);
    /* nbf rounded up: not valid at its whole second, valid one later. */
    t = token_read("nbf_real", &len);
    p = policy_default();
    p.skew = 0;
    p.now = NBF_VALID;
    assert_int_equal(jwt_verify(keys, &p, t, len, &c, why, sizeof why), -1);
    p.now = NBF_VALID + 1;
    assert_int_equal(jwt_verify(keys, &p, t, len, &c, why, sizeof why), 0);
    free(t);
}

/* now < exp + skew and now >= nbf - skew, at the edges. */
static void test_claims_time_edges(void **state)
{
    (void)state;
    size_t len;
    char *t = token_read("rs256_valid", &len);
    jwt_policy_t p = policy_default();
    p.skew = 0;
    p.now = EXP_2100 - 1;
    expect_with(&p, t, len, NULL);
    p.now = EXP_2100;
    expect_with(&p, t, len, "token expired");
    p.skew = 60;
    p.now = EXP_2100 + 59;
    expect_with(&p, t, len, NULL);
    p.now = EXP_2100 + 60;
    expect_with(&p, t, len, "token expired");
    p.skew = 0;
    p.now = NBF_VALID;
    expect_with(&p, t, len, NULL);
    p.now = NBF_VALID - 1;
    expect_with(&p, t, len, "not yet valid");
    p.skew = 60;
    p.now = NBF_VALID - 60;
    expect_with(&p, t, len, NULL);
    p.now = NBF_VALID - 61;
    expect_with(&p, t, len, "not yet valid");
    free(t);

    t = token_read("expired", &len);
    p.now = EXP_EXPIRED + 59;
    expect_with(&p, t, len, NULL);
    p.now = EXP_EXPIRED + 60;
    expect_with(&p, t, len, "token expired");
    free(t);
}

static void test_claims_strings(void **state)
{
    (void)state;
    expect_vector("sub_missing", "sub missing");
    expect_vector("sub_empty", "sub length 0");
    expect_vector("sub_too_long", "sub length 129");
    expect_vector("sub_number", "sub not a string");
    expect_vector("sub_control", "sub has a control character");
    expect_vector("name_too_long", "name length 129");
    expect_vector("unit_missing", "unit missing");
    expect_vector("unit_too_long", "unit length 33");
    expect_vector("region_missing", "region missing");
    expect_vector("region_too_long", "region length 9");
    expect_vector("clearance_number", "clearance not a string");
}

static void test_claims_roles(void **state)
{
    (void)state;
    expect_vector("roles_missing", "roles missing");
    expect_vector("roles_string", "roles missing or not an array");
    expect_vector("roles_too_many", "more than 16");
    expect_vector("role_too_long", "entry length 33");
    expect_vector("role_empty", "entry length 0");
    expect_vector("role_number", "non-string");
}

static void test_claims_document(void **state)
{
    (void)state;
    expect_vector("payload_array", "claims: not a JSON object");
    expect_vector("payload_trailing", "claims: not JSON");
    expect_vector("payload_nul", "claims: not JSON");
}

/* ----------------------------------------------------------------- policy */

static void test_policy_and_arguments(void **state)
{
    (void)state;
    size_t len;
    char *t = token_read("rs256_valid", &len);
    jwt_claims_t c;
    char why[160];
    jwt_policy_t p = policy_default();

    assert_int_equal(jwt_verify(keys, NULL, t, len, &c, why, sizeof why), -1);
    assert_string_equal(why, "policy incomplete");
    p.issuer = NULL;
    expect_with(&p, t, len, "policy incomplete");
    p = policy_default();
    p.audience = "";
    expect_with(&p, t, len, "policy incomplete");
    p = policy_default();
    p.skew = -1;
    expect_with(&p, t, len, "policy incomplete");
    p = policy_default();
    p.max_len = 0;
    expect_with(&p, t, len, "policy incomplete");
    p = policy_default();
    assert_int_equal(jwt_verify(NULL, &p, t, len, &c, why, sizeof why), -1);
    assert_string_equal(why, "no keys");

    /* A different issuer or audience in the policy refuses the same token. */
    p.issuer = ISSUER "/";
    expect_with(&p, t, len, "iss");
    p = policy_default();
    p.audience = "itp";
    expect_with(&p, t, len, "aud");

    assert_int_equal(jwt_verify(keys, &p, t, len, NULL, why, sizeof why), -1);

    /* why may be absent or short. */
    p = policy_default();
    assert_int_equal(jwt_verify(keys, &p, t, len, &c, NULL, 0), 0);
    assert_int_equal(jwt_verify(keys, &p, t, len - 1, &c, NULL, 0), -1);
    memset(why, 'x', sizeof why);
    assert_int_equal(jwt_verify(keys, &p, t, len - 1, &c, why, 8), -1);
    assert_int_equal(strlen(why), 7);
    free(t);
}

/* ---------------------------------------------------------------- threads */

struct worker_arg {
    char *rs, *es, *bad;
    size_t rs_len, es_len, bad_len;
    int failures;
};

static void *worker(void *data)
{
    struct worker_arg *a = data;
    jwt_policy_t p = policy_default();
    for (int i = 0; i < 100; i++) {
        jwt_claims_t c;
        char why[160];
        if (jwt_verify(keys, &p, a->rs, a->rs_len, &c, why, sizeof why) != 0 ||
            strcmp(c.sub, "jdoe") != 0)
            a->failures++;
        if (jwt_verify(keys, &p, a->es, a->es_len, &c, why, sizeof why) != 0 || !c.classified)
            a->failures++;
        if (jwt_verify(keys, &p, a->bad, a->bad_len, &c, why, sizeof why) != -1)
            a->failures++;
    }
    return NULL;
}

static void test_threads_share_keys(void **state)
{
    (void)state;
    enum { N = 4 };
    pthread_t th[N];
    struct worker_arg args[N];
    for (int i = 0; i < N; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].rs = token_read("rs256_valid", &args[i].rs_len);
        args[i].es = token_read("es256_valid", &args[i].es_len);
        args[i].bad = token_read("tampered", &args[i].bad_len);
        assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
        free(args[i].rs);
        free(args[i].es);
        free(args[i].bad);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwks_loads_rsa_and_ec),
        cmocka_unit_test(test_jwks_refusals),
        cmocka_unit_test(test_valid_rs256_claims),
        cmocka_unit_test(test_valid_es256_claims),
        cmocka_unit_test(test_valid_minimal),
        cmocka_unit_test(test_valid_variants),
        cmocka_unit_test(test_valid_against_real_clock),
        cmocka_unit_test(test_alg_refusals),
        cmocka_unit_test(test_kid_refusals),
        cmocka_unit_test(test_header_members_refused),
        cmocka_unit_test(test_duplicate_members),
        cmocka_unit_test(test_header_shapes),
        cmocka_unit_test(test_signature_refusals),
        cmocka_unit_test(test_es256_der_is_length),
        cmocka_unit_test(test_signature_lengths_and_ranges),
        cmocka_unit_test(test_signature_before_claims),
        cmocka_unit_test(test_shape_refusals),
        cmocka_unit_test(test_base64url_strict),
        cmocka_unit_test(test_length_limit),
        cmocka_unit_test(test_claims_iss_aud),
        cmocka_unit_test(test_claims_times),
        cmocka_unit_test(test_claims_real_exp),
        cmocka_unit_test(test_claims_time_edges),
        cmocka_unit_test(test_claims_strings),
        cmocka_unit_test(test_claims_roles),
        cmocka_unit_test(test_claims_document),
        cmocka_unit_test(test_policy_and_arguments),
        cmocka_unit_test(test_threads_share_keys),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
