/* Process log: one line per event, written with a single write(2) on an
 * O_APPEND descriptor so lines from the master and all workers never mix. */
#ifndef ITPM_LOG_H
#define ITPM_LOG_H

#include <stdarg.h>

typedef enum { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG } log_level_t;

/* Opens (or reopens) the log at path; NULL or "" means stderr. */
int log_open(const char *path);
int log_reopen(void);
void log_set_level(log_level_t level);
void log_msg(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line written as given, prefixed by the time only. */
void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
