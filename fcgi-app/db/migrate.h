/* Schema migrations: sql/NNN_name.sql applied in order, each in its own
 * transaction, recorded in schema_migrations; running it again is a no-op. */
#ifndef ITPM_MIGRATE_H
#define ITPM_MIGRATE_H

#include "core/conf.h"

int migrate_run(const conf_t *conf);

#endif
