/* The FastCGI listening socket, made by the master before it forks. */
#ifndef ITPM_LISTENER_H
#define ITPM_LISTENER_H

#include "core/conf.h"

/* Binds conf->listen (a unix path, or HOST:PORT); returns the fd or -1. */
int listener_open(const conf_t *conf);
/* Removes the unix socket file, if the listener is one. */
void listener_unlink(const conf_t *conf);

#endif
