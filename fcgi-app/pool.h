/* The master: forks and supervises the workers (respawn with back-off,
 * recycling, request time-outs, graceful stop, reload one by one). */
#ifndef ITPM_POOL_H
#define ITPM_POOL_H

#include "conf.h"

/* Runs until SIGTERM/SIGINT; takes ownership of conf (reloads replace it).
 * Returns the exit status for main(). */
int pool_run(const char *conf_path, conf_t *conf, int listen_fd);

#endif
