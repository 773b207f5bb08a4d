/* Money: CNY with exactly two decimals in XML, integer fen everywhere else.
 * Never a float. */
#ifndef ITPM_MONEY_H
#define ITPM_MONEY_H

#include <stddef.h>

/* "2350000.00" -> 235000000. -1 on anything but digits '.' two digits, or
 * more than 12 integer digits. */
int money_parse_fen(const char *s, long long *fen);
/* 235000000 -> "2350000.00" into out (at least 24 bytes). */
void money_format(long long fen, char *out, size_t outlen);

#endif
