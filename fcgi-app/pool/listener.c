/* Unix or TCP listener with the socket's group and mode applied. Non-blocking:
 * workers wait in ppoll() and a worker that loses the race gets EAGAIN. */
#include "pool/listener.h"

#include "core/log.h"

#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int listen_unix(const conf_t *conf)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(conf->listen);
    if (n >= sizeof sa.sun_path) {
        log_error("listen path too long: %s", conf->listen);
        return -1;
    }
    memcpy(sa.sun_path, conf->listen, n + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        log_error("socket: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    /* A socket left by a dead master is replaced; any other file is not. */
    if (lstat(conf->listen, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            log_error("listen path %s exists and is not a socket", conf->listen);
            goto fail;
        }
        unlink(conf->listen);
    }
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc < 0) {
        log_error("bind %s: %s", conf->listen, strerror(errno));
        goto fail;
    }
    if (conf->socket_group[0] != '\0') {
        struct group *g = getgrnam(conf->socket_group);
        if (g == NULL) {
            log_error("socket_group %s: no such group", conf->socket_group);
            goto fail_unlink;
        }
        if (chown(conf->listen, (uid_t)-1, g->gr_gid) < 0) {
            log_error("chown %s: %s", conf->listen, strerror(errno));
            goto fail_unlink;
        }
    }
    if (chmod(conf->listen, (mode_t)conf->socket_mode) < 0) {
        log_error("chmod %s: %s", conf->listen, strerror(errno));
        goto fail_unlink;
    }
    if (listen(fd, conf->listen_backlog) < 0) {
        log_error("listen %s: %s", conf->listen, strerror(errno));
        goto fail_unlink;
    }
    return fd;
fail_unlink:
    unlink(conf->listen);
fail:
    close(fd);
    return -1;
}

static int listen_tcp(const conf_t *conf)
{
    char host[256];
    const char *colon = strrchr(conf->listen, ':');
    size_t hlen = (size_t)(colon - conf->listen);
    if (hlen >= sizeof host) {
        log_error("listen host too long");
        return -1;
    }
    memcpy(host, conf->listen, hlen);
    host[hlen] = '\0';
    /* [::1]:9000 */
    char *h = host;
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host[hlen - 1] = '\0';
        h = host + 1;
    }
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo(h, colon + 1, &hints, &ai);
    if (gai != 0) {
        log_error("listen %s: %s", conf->listen, gai_strerror(gai));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, conf->listen_backlog) < 0) {
        log_error("listen %s: %s", conf->listen, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    return fd;
}

int listener_open(const conf_t *conf)
{
    return conf->listen[0] == '/' ? listen_unix(conf) : listen_tcp(conf);
}

void listener_unlink(const conf_t *conf)
{
    if (conf->listen[0] == '/')
        unlink(conf->listen);
}
