/* What an upload's name and content type must be to be kept and served
 * back as given. */
#include "domain/upload.h"

#include "core/utf8.h"
#include "domain/declaration.h"

#include <ctype.h>
#include <libxml/xmlunicode.h>
#include <string.h>

/* Characters that make a name read as another or hide part of it: controls,
 * format characters (zero-width, bidirectional: U+202E shows
 * "invoice\u202Efdp.exe" as "invoiceexe.pdf"), line and paragraph
 * separators, private use, noncharacters, and the invisible ones libxml2's
 * Unicode 4 tables do not class so (newer formats, fillers, variation
 * selectors). */
static int deceptive(unsigned c)
{
    int cp = (int)c;
    return xmlUCSIsCatCc(cp) || xmlUCSIsCatCf(cp) || xmlUCSIsCatZl(cp) || xmlUCSIsCatZp(cp) ||
           xmlUCSIsCatCo(cp) || c == 0x061c || c == 0x115f || c == 0x1160 || c == 0x180e ||
           (c >= 0x2066 && c <= 0x2069) || c == 0x3164 || c == 0xffa0 ||
           (c >= 0xfe00 && c <= 0xfe0f) || (c >= 0xe0100 && c <= 0xe01ef) ||
           (c >= 0xfdd0 && c <= 0xfdef) || (c & 0xfffe) == 0xfffe;
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
