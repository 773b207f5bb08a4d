/* What an upload's name and content type must be to be kept and served
 * back as given. */
#include "domain/upload.h"

#include "domain/declaration.h"

#include <ctype.h>
#include <libxml/xmlunicode.h>
#include <string.h>

/* The code point at s (n bytes left) into *c and its length; 0 when the
 * bytes are not UTF-8 (overlong forms, surrogates, values past U+10FFFF and
 * stray continuation bytes included: libxml2's decoder lets them through,
 * and PostgreSQL would then refuse the name). */
static size_t utf8_at(const unsigned char *s, size_t n, unsigned *c)
{
    static const unsigned least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (s[0] < 0x80) {
        *c = s[0];
        return 1;
    }
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (len == 0 || len > n || s[0] > 0xf4)
        return 0;
    unsigned v = s[0] & (0x7fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3fu);
    }
    if (v < least[len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *c = v;
    return len;
}

/* Characters that make a name read as another or hide part of it: controls,
 * format characters (zero-width, bidirectional: U+202E shows
 * "invoice\u202Efdp.exe" as "invoiceexe.pdf"), line and paragraph
 * separators, private use, and the invisible ones libxml2's Unicode 4
 * tables do not class so (newer formats, fillers, variation selectors). */
static int deceptive(unsigned c)
{
    int cp = (int)c;
    return xmlUCSIsCatCc(cp) || xmlUCSIsCatCf(cp) || xmlUCSIsCatZl(cp) || xmlUCSIsCatZp(cp) ||
           xmlUCSIsCatCo(cp) || c == 0x061c || c == 0x115f || c == 0x1160 || c == 0x180e ||
           (c >= 0x2066 && c <= 0x2069) || c == 0x3164 || c == 0xffa0 ||
           (c >= 0xfe00 && c <= 0xfe0f) || (c >= 0xe0100 && c <= 0xe01ef);
}

/* A file name a user can be given back: UTF-8, printable, not blank, no
 * path, nothing that hides what it is, bounded. */
int upload_filename_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 255 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || text_blank(name))
        return 0;
    for (size_t i = 0; i < n;) {
        unsigned c;
        size_t len = utf8_at((const unsigned char *)name + i, n - i, &c);
        if (len == 0 || c == '/' || c == '\\' || c == '"' || deceptive(c))
            return 0;
        i += len;
    }
    return 1;
}

static size_t token_length(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0' && (isalnum((unsigned char)s[n]) || strchr("!#$%&'*+-.^_`|~", s[n])))
        n++;
    return n;
}

/* type/subtype, then parameters without control characters: what the
 * download is served with again. */
int upload_media_type_valid(const char *type)
{
    size_t t = token_length(type);
    if (t == 0 || type[t] != '/')
        return 0;
    const char *sub = type + t + 1;
    size_t st = token_length(sub);
    if (st == 0)
        return 0;
    for (const char *p = sub + st; *p != '\0'; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            return 0;
    const char *rest = sub + st + strspn(sub + st, " \t");
    return *rest == '\0' || *rest == ';';
}
