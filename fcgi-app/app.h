/* What a worker holds for its whole life and lends to every request: the
 * configuration, the scoreboard, the database connection, the route table. */
#ifndef ITPM_APP_H
#define ITPM_APP_H

#include "conf.h"
#include "db.h"
#include "ldap_auth.h"
#include "router.h"
#include "scoreboard.h"

#include <sys/types.h>

typedef struct app {
    const conf_t *conf;
    scoreboard_t *sb;
    db_t *db;
    ldap_dir_t *dir;
    int slot;
    pid_t pid;
} app_t;

extern const route_t app_routes[];
extern const size_t app_nroutes;

/* Answers the problem for a failed database call (503 or 500). */
void app_db_problem(request_t *req, response_t *res, db_status_t status);

#endif
