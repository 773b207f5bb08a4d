/* One worker process: accepts FastCGI requests one at a time until it is
 * told to stop, reaches its request budget, or loses its master. */
#ifndef ITPM_WORKER_H
#define ITPM_WORKER_H

#include "core/conf.h"
#include "pool/scoreboard.h"

#include <sys/types.h>

/* Runs the accept loop; returns the process exit status. */
int worker_run(const conf_t *conf, scoreboard_t *sb, int slot, int listen_fd, pid_t master,
               int max_requests);

#endif
