/* Log file ownership: path, descriptor, reopen on SIGUSR1 (logrotate). */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_fd = STDERR_FILENO;
static char log_path[4096];
static log_level_t log_threshold = LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_open(const char *path)
{
    if (path == NULL || path[0] == '\0') {
        log_path[0] = '\0';
        if (log_fd != STDERR_FILENO)
            close(log_fd);
        log_fd = STDERR_FILENO;
        return 0;
    }
    if (strlen(path) >= sizeof log_path) {
        log_error("log file path too long");
        return -1;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        log_error("cannot open log file %s: %s", path, strerror(errno));
        return -1;
    }
    if (log_fd != STDERR_FILENO)
        close(log_fd);
    log_fd = fd;
    if (path != log_path)
        memcpy(log_path, path, strlen(path) + 1);
    return 0;
}

int log_reopen(void)
{
    if (log_path[0] == '\0')
        return 0;
    char path[sizeof log_path];
    memcpy(path, log_path, sizeof path);
    return log_open(path);
}

void log_set_level(log_level_t level)
{
    log_threshold = level;
}

/* The time prefix of a line. The second's part is formatted once per second:
 * localtime_r and strftime cost more than the rest of a request log line. */
static size_t stamp(char *buf, size_t size)
{
    static time_t cached_sec = -1;
    static char date[32], zone[16];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (tv.tv_sec != cached_sec) {
        struct tm tm;
        localtime_r(&tv.tv_sec, &tm);
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
        strftime(zone, sizeof zone, "%z", &tm);
        cached_sec = tv.tv_sec;
    }
    int n = snprintf(buf, size, "%s.%03ld%s ", date, (long)(tv.tv_usec / 1000), zone);
    return n > 0 ? (size_t)n : 0;
}

/* Writes one line. A control character in it (a newline in a username
 * quoted by a message, say) becomes '?': text from outside cannot forge a
 * line of its own. */
static void emit(char *buf, size_t n, size_t size)
{
    if (n >= size - 1)
        n = size - 2;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            buf[i] = '?';
    buf[n++] = '\n';
    /* A log line that cannot be written has nowhere else to go. */
    (void)!write(log_fd, buf, n);
}

void log_msg(log_level_t level, const char *fmt, ...)
{
    if (level > log_threshold)
        return;
    char buf[2048];
    size_t n = stamp(buf, sizeof buf);
    int m = snprintf(buf + n, sizeof buf - n, "%s [%d] ", level_names[level], (int)getpid());
    if (m > 0)
        n += (size_t)m;
    va_list ap;
    va_start(ap, fmt);
    m = vsnprintf(buf + n, sizeof buf - n, fmt, ap);
    va_end(ap);
    if (m > 0)
        n += (size_t)m;
    emit(buf, n < sizeof buf ? n : sizeof buf - 1, sizeof buf);
}

void log_line(const char *fmt, ...)
{
    char buf[2048];
    size_t n = stamp(buf, sizeof buf);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - n, fmt, ap);
    va_end(ap);
    if (m > 0)
        n += (size_t)m;
    emit(buf, n < sizeof buf ? n : sizeof buf - 1, sizeof buf);
}
