/* The daemon's settings: one table of every key with its type, default,
 * bounds and help; loaded from one INI file by inih. Business rules are not
 * here: they are data in PostgreSQL. */
#ifndef ITPM_CONF_H
#define ITPM_CONF_H

#include <stddef.h>

typedef struct {
    /* [server] */
    char *listen;
    int listen_backlog;
    char *socket_group;
    int socket_mode;
    int workers;
    int max_requests;
    int max_requests_jitter;
    int request_timeout;
    int shutdown_timeout;
    int respawn_backoff_max;
    char *pid_file;
    char *log_file;
    int log_level;
    long long max_body;
    char *public_origin;
    char *xsd_dir;
    /* [batch] */
    long long batch_max_body;
    int batch_max_records;
    int batch_timeout;
    int batch_max_errors;
    /* [database] */
    char *db_conninfo;
    char *db_migrate_conninfo;
    char *sql_dir;
    int db_connect_timeout;
    int db_statement_timeout;
    /* [ldap] */
    char *ldap_uri;
    int ldap_starttls;
    char *ldap_ca_file;
    char *ldap_bind_dn;
    char *ldap_bind_password;
    char *ldap_base_dn;
    char *ldap_user_filter;
    char *ldap_attr_uid;
    char *ldap_attr_name;
    char *ldap_attr_unit;
    char *ldap_attr_region;
    char *ldap_attr_member_of;
    char *ldap_group_base_dn;
    char *ldap_group_filter;
    int ldap_network_timeout;
    int ldap_timeout;
    /* [roles]: directory group (cn) for each role and for the clearance */
    char *group_role[10];
    char *group_classified;
    /* [sso] */
    char *sso_jwks_file;
    char *sso_issuer;
    char *sso_audience;
    int sso_clock_skew;
    int sso_max_token;
    /* [session] */
    int session_idle_timeout;
    int session_absolute_timeout;
    /* [throttle] */
    int throttle_account_failures;
    int throttle_address_failures;
    int throttle_window;
} conf_t;

/* Loads path into conf (defaults first). On failure returns -1 and writes
 * "file:line: reason" into err. conf is left freed on failure. */
int conf_load(const char *path, conf_t *conf, char *err, size_t errlen);
/* Same, from a string (used by the tests); name is used in messages. */
int conf_load_string(const char *text, const char *name, conf_t *conf, char *err, size_t errlen);
void conf_free(conf_t *conf);
/* Prints every setting with its default and help (itpmd --help-config). */
void conf_print_reference(void);

#endif
