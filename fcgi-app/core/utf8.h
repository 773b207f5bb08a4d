/* Decoding UTF-8 strictly, one character at a time. */
#ifndef ITPM_UTF8_H
#define ITPM_UTF8_H

#include <stddef.h>

/* The code point at s (n >= 1 bytes left) into *c and its length; 0 when
 * the bytes are not UTF-8: overlong forms, surrogates, values past
 * U+10FFFF, stray continuation bytes and sequences cut short. */
size_t utf8_at(const unsigned char *s, size_t n, unsigned *c);

#endif
