/* itpmd: command line, start-up checks made before forking, then the pool. */
#include "auth/auth.h"
#include "core/conf.h"
#include "auth/jwt.h"
#include "pool/listener.h"
#include "core/log.h"
#include "db/migrate.h"
#include "pool/pool.h"
#include "xml/xml_in.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: itpmd -c FILE [--migrate | --check]\n"
               "       itpmd --help-config   print every setting with its default\n");
}

static int pid_file_write(const char *path)
{
    if (path[0] == '\0')
        return 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        log_error("pid file %s: %s", path, strerror(errno));
        return -1;
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    int ok = write(fd, buf, (size_t)n) == n;
    close(fd);
    if (!ok) {
        log_error("pid file %s: short write", path);
        return -1;
    }
    return 0;
}

static jwks_t *sso_keys;

/* Loads what the workers share read-only; runs at start and on SIGHUP. */
static int prepare_shared(const conf_t *conf)
{
    jwks_t *keys = NULL;
    if (conf->sso_jwks_file[0] != '\0') {
        char err[512];
        keys = jwks_load(conf->sso_jwks_file, err, sizeof err);
        if (keys == NULL) {
            log_error("[sso] jwks_file %s: %s", conf->sso_jwks_file, err);
            return -1;
        }
        log_info("sso: %zu keys from %s", jwks_count(keys), conf->sso_jwks_file);
    }
    jwks_free(sso_keys);
    sso_keys = keys;
    auth_set_jwks(keys);
    return 0;
}

int main(int argc, char **argv)
{
    const char *conf_path = NULL;
    int migrate = 0, check = 0;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"migrate", no_argument, NULL, 'm'},
                                         {"check", no_argument, NULL, 't'},
                                         {"help-config", no_argument, NULL, 'H'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "c:th", opts, NULL)) != -1) {
        switch (o) {
        case 'c': conf_path = optarg; break;
        case 'm': migrate = 1; break;
        case 't': check = 1; break;
        case 'H': conf_print_reference(); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (conf_path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    conf_t conf;
    char err[1024];
    if (conf_load(conf_path, &conf, err, sizeof err) < 0) {
        fprintf(stderr, "itpmd: %s\n", err);
        return 1;
    }
    log_set_level((log_level_t)conf.log_level);
    if (check) {
        xmlInitParser();
        int ok = xml_in_init(conf.xsd_dir) == 0 && prepare_shared(&conf) == 0;
        xml_in_cleanup();
        jwks_free(sso_keys);
        xmlCleanupParser();
        conf_free(&conf);
        if (!ok)
            return 1;
        printf("itpmd: %s: configuration ok\n", conf_path);
        return 0;
    }
    if (migrate) {
        int rc = migrate_run(&conf) < 0 ? 1 : 0;
        conf_free(&conf);
        return rc;
    }
    if (log_open(conf.log_file) < 0) {
        conf_free(&conf);
        return 1;
    }
    /* Everything the workers share read-only is made before the first fork. */
    xmlInitParser();
    int rc = 1;
    int fd = -1;
    if (xml_in_init(conf.xsd_dir) < 0 || prepare_shared(&conf) < 0)
        goto out;
    fd = listener_open(&conf);
    if (fd < 0)
        goto out;
    if (pid_file_write(conf.pid_file) < 0)
        goto out_listener;
    rc = pool_run(conf_path, &conf, fd, prepare_shared);
    if (conf.pid_file[0] != '\0')
        unlink(conf.pid_file);
out_listener:
    close(fd);
    listener_unlink(&conf);
out:
    jwks_free(sso_keys);
    xml_in_cleanup();
    xmlCleanupParser();
    conf_free(&conf);
    return rc;
}
