/* What a worker holds for its whole life and lends to every request: the
 * configuration, the scoreboard, the database connection, the route table. */
#ifndef ITPM_APP_H
#define ITPM_APP_H

#include "core/conf.h"
#include "db/db.h"
#include "auth/ldap_auth.h"
#include "http/router.h"
#include "pool/scoreboard.h"
#include "xml/xml_out.h"

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

/* Answers the problem for a failed database call (4xx for a refusal, 503
 * when the database is down, 500 otherwise). */
void app_db_problem(request_t *req, response_t *res, db_status_t status);
/* One row when the project with code $1 is in the caller's scope: batched
 * before a sub-record list so an unseen project answers 404, not an empty list. */
extern const db_stmt_t app_stmt_project_exists;
/* The authenticated caller's scope, for db_query_as and db_batch_as. */
void app_actor(request_t *req, db_actor_t *actor);
/* Runs n statements in one transaction with the caller's scope
 * (db_batch_as); on failure answers the problem and returns -1. */
int app_batch(request_t *req, response_t *res, const db_stmt_t *const *stmts,
              const char *const *const *values, int n, PGresult **out);
/* Finishes x and answers it with status as application/xml (500 if the
 * document could not be written). */
int app_send_xml(request_t *req, response_t *res, xml_out_t *x, int status);

#endif
