/* The master: forks and supervises the workers (respawn with back-off,
 * recycling, request time-outs, graceful stop, reload one by one). */
#ifndef ITPM_POOL_H
#define ITPM_POOL_H

#include "core/conf.h"

/* Runs until SIGTERM/SIGINT; takes ownership of conf (reloads replace it).
 * Returns the exit status for main(). */
/* prepare(conf) builds what the workers inherit read-only (e.g. SSO keys);
 * it runs again on SIGHUP with the new configuration, which is refused when
 * it fails. */
typedef int (*pool_prepare_fn)(const conf_t *conf);
int pool_run(const char *conf_path, conf_t *conf, int listen_fd, pool_prepare_fn prepare);

#endif
