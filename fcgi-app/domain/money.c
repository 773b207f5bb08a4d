/* Fixed-point conversion between the XML money form and fen. */
#include "domain/money.h"

#include <stdio.h>
#include <string.h>

int money_parse_fen(const char *s, long long *fen)
{
    const char *dot = strchr(s, '.');
    if (dot == NULL || dot == s || dot - s > 12 || strlen(dot + 1) != 2)
        return -1;
    long long v = 0;
    for (const char *p = s; p < dot; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    for (const char *p = dot + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (dot - s > 1 && s[0] == '0')
        return -1;
    *fen = v;
    return 0;
}

void money_format(long long fen, char *out, size_t outlen)
{
    const char *sign = fen < 0 ? "-" : "";
    unsigned long long a = fen < 0 ? (unsigned long long)(-(fen + 1)) + 1 : (unsigned long long)fen;
    snprintf(out, outlen, "%s%llu.%02llu", sign, a / 100, a % 100);
}
