/* Unit tests for conf.c: the defaults, every value type and its bounds, and
 * that each refusal names "<file>:<line>" precisely. The sanitizer build
 * checks that no path leaks. */
#include "core/conf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define NAME "test.ini"

static char err[1024];

/* Loads text that must be accepted. */
static void load_ok(const char *text, conf_t *c)
{
    err[0] = '\0';
    int rc = conf_load_string(text, NAME, c, err, sizeof err);
    if (rc != 0)
        fail_msg("refused: %s\n--- text ---\n%s", err, text);
}

/* Loads text that must be refused at line, with a message starting with
 * "test.ini:<line>: " and holding every fragment given. */
static void load_refused(const char *text, int line, const char *fragment)
{
    conf_t c;
    char prefix[64];
    memset(&c, 0x5a, sizeof c);
    err[0] = '\0';
    int rc = conf_load_string(text, NAME, &c, err, sizeof err);
    if (rc == 0) {
        conf_free(&c);
        fail_msg("accepted, expected a refusal at line %d\n--- text ---\n%s", line, text);
    }
    assert_int_equal(rc, -1);
    snprintf(prefix, sizeof prefix, NAME ":%d: ", line);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", err, prefix);
    if (fragment != NULL && strstr(err, fragment) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", err, fragment);
    /* Refused means freed: nothing left to release. */
    assert_null(c.listen);
    assert_null(c.db_conninfo);
}

static void test_defaults(void **state)
{
    (void)state;
    conf_t c;
    load_ok("", &c);
    assert_string_equal(c.listen, "/run/itpm/itpmd.sock");
    assert_int_equal(c.listen_backlog, 511);
    assert_string_equal(c.socket_group, "");
    assert_int_equal(c.socket_mode, 0660);
    assert_int_equal(c.workers, 4);
    assert_int_equal(c.max_requests, 10000);
    assert_int_equal(c.max_requests_jitter, 10);
    assert_int_equal(c.request_timeout, 60);
    assert_int_equal(c.shutdown_timeout, 30);
    assert_int_equal(c.respawn_backoff_max, 30);
    assert_string_equal(c.pid_file, "");
    assert_string_equal(c.log_file, "");
    assert_int_equal(c.log_level, 2); /* info */
    assert_int_equal(c.max_body, 1048576);
    assert_string_equal(c.public_origin, "https://127.0.0.1:8443");
    assert_string_equal(c.db_conninfo, "dbname=itpm user=itpm_app");
    assert_string_equal(c.db_migrate_conninfo, "dbname=itpm user=itpm_owner");
    assert_int_equal(c.db_connect_timeout, 5);
    assert_int_equal(c.db_statement_timeout, 30000);
    assert_string_equal(c.ldap_uri, "");
    assert_int_equal(c.ldap_starttls, 0);
    assert_int_equal(c.session_idle_timeout, 1800);
    assert_int_equal(c.session_absolute_timeout, 28800);
    conf_free(&c);
    /* Only comments and blank lines: still the defaults. */
    load_ok("; a comment\n# another\n\n[server]\n", &c);
    assert_int_equal(c.workers, 4);
    conf_free(&c);
}

static void test_contract_example(void **state)
{
    (void)state;
    conf_t c;
    load_ok("[server]\n"
            "listen = /tmp/itpm/itpmd.sock\n"
            "listen_backlog = 511\n"
            "socket_group =                    ; group for the unix socket\n"
            "socket_mode = 0660\n"
            "workers = 4\n"
            "max_requests = 10000              ; 0 = never recycle\n"
            "max_requests_jitter = 10          ; percent\n"
            "request_timeout = 60\n"
            "shutdown_timeout = 30\n"
            "respawn_backoff_max = 30\n"
            "pid_file =\n"
            "log_file =\n"
            "max_body = 1048576                ; bytes\n"
            "public_origin = https://127.0.0.1:8443\n"
            "\n"
            "[database]\n"
            "conninfo = host=/x/pg/run port=5432 dbname=itpm user=itpm_app\n"
            "migrate_conninfo = host=/x/pg/run port=5432 dbname=itpm user=itpm_owner\n"
            "sql_dir = /work/main/sql\n"
            "connect_timeout = 5               ; seconds\n"
            "statement_timeout = 30000         ; milliseconds\n",
            &c);
    assert_string_equal(c.listen, "/tmp/itpm/itpmd.sock");
    assert_string_equal(c.socket_group, "");
    assert_int_equal(c.max_requests, 10000);
    assert_string_equal(c.db_conninfo, "host=/x/pg/run port=5432 dbname=itpm user=itpm_app");
    assert_string_equal(c.sql_dir, "/work/main/sql");
    conf_free(&c);
}

static void test_int_bounds(void **state)
{
    (void)state;
    conf_t c;
    load_ok("[server]\nworkers = 1\nmax_requests = 0\nrequest_timeout = 0\n", &c);
    assert_int_equal(c.workers, 1);
    assert_int_equal(c.max_requests, 0);
    assert_int_equal(c.request_timeout, 0);
    conf_free(&c);
    load_ok("[server]\nworkers = 256\nmax_requests = 2147483647\nlisten_backlog = 65535\n", &c);
    assert_int_equal(c.workers, 256);
    assert_int_equal(c.max_requests, 2147483647);
    assert_int_equal(c.listen_backlog, 65535);
    conf_free(&c);

    load_refused("[server]\nworkers = 0\n", 2, "out of range");
    load_refused("[server]\nworkers = 257\n", 2, "out of range");
    load_refused("[server]\nworkers = -1\n", 2, "out of range");
    load_refused("[server]\nmax_requests = 2147483648\n", 2, "out of range");
    load_refused("[server]\nmax_requests = 99999999999999999999\n", 2, NULL);
    load_refused("[database]\nstatement_timeout = 3600001\n", 2, "out of range");
}

static void test_int_must_be_an_integer(void **state)
{
    (void)state;
    load_refused("[server]\nworkers = four\n", 2, "not an integer");
    load_refused("[server]\nworkers = 4x\n", 2, "not an integer");
    load_refused("[server]\nworkers = 4.0\n", 2, "not an integer");
    load_refused("[server]\nworkers = 0x10\n", 2, "not an integer");
    load_refused("[server]\nworkers =\n", 2, "not an integer");
    load_refused("[server]\nworkers = 4 5\n", 2, "not an integer");
}

static void test_octal_mode(void **state)
{
    (void)state;
    conf_t c;
    load_ok("[server]\nsocket_mode = 0600\n", &c);
    assert_int_equal(c.socket_mode, 0600);
    conf_free(&c);
    load_ok("[server]\nsocket_mode = 0777\n", &c);
    assert_int_equal(c.socket_mode, 0777);
    conf_free(&c);
    load_ok("[server]\nsocket_mode = 0\n", &c);
    assert_int_equal(c.socket_mode, 0);
    conf_free(&c);

    load_refused("[server]\nsocket_mode = 0800\n", 2, "not an octal mode");
    load_refused("[server]\nsocket_mode = 0669\n", 2, "not an octal mode");
    load_refused("[server]\nsocket_mode = 01000\n", 2, "not an octal mode");
    load_refused("[server]\nsocket_mode = -1\n", 2, "not an octal mode");
    load_refused("[server]\nsocket_mode = rw-rw----\n", 2, "not an octal mode");
}

static void test_size_suffixes(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        long long value;
    } ok[] = {
        {"512", 512},           {"1k", 1024},          {"1K", 1024},
        {"2m", 2097152},        {"2M", 2097152},       {"1g", 1073741824LL},
        {"3G", 3221225472LL},   {"1024g", 1LL << 40},
    };
    char text[128];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        conf_t c;
        snprintf(text, sizeof text, "[server]\nmax_body = %s\n", ok[i].text);
        load_ok(text, &c);
        assert_int_equal(c.max_body, ok[i].value);
        conf_free(&c);
    }
    load_refused("[server]\nmax_body = 0\n", 2, "out of range");
    load_refused("[server]\nmax_body = 1025g\n", 2, "out of range");
    load_refused("[server]\nmax_body = 1t\n", 2, "not a size");
    load_refused("[server]\nmax_body = 1kb\n", 2, "not a size");
    load_refused("[server]\nmax_body = 1.5m\n", 2, "not a size");
    load_refused("[server]\nmax_body = -1k\n", 2, "not a size");
    load_refused("[server]\nmax_body = k\n", 2, "not a size");
    load_refused("[server]\nmax_body = 9999999999999g\n", 2, "not a size");
    load_refused("[server]\nmax_body = 99999999999999999999\n", 2, "not a size");
}

static void test_log_level(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int level;
    } ok[] = {{"error", 0}, {"warn", 1}, {"info", 2}, {"debug", 3}, {"DEBUG", 3}, {"Warn", 1}};
    char text[128];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        conf_t c;
        snprintf(text, sizeof text, "[server]\nlog_level = %s\n", ok[i].name);
        load_ok(text, &c);
        assert_int_equal(c.log_level, ok[i].level);
        conf_free(&c);
    }
    load_refused("[server]\nlog_level = verbose\n", 2, "not one of error, warn, info, debug");
    load_refused("[server]\nlog_level = 3\n", 2, "not one of");
}

static void test_bool(void **state)
{
    (void)state;
    static const char *const yes[] = {"yes", "YES", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "Off", "0"};
    char text[128];
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        conf_t c;
        snprintf(text, sizeof text, "[ldap]\nstarttls = %s\n", yes[i]);
        load_ok(text, &c);
        assert_int_equal(c.ldap_starttls, 1);
        conf_free(&c);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        conf_t c;
        snprintf(text, sizeof text, "[ldap]\nstarttls = yes\nstarttls = %s\n", no[i]);
        load_ok(text, &c);
        assert_int_equal(c.ldap_starttls, 0);
        conf_free(&c);
    }
    load_refused("[ldap]\nstarttls = maybe\n", 2, "not yes or no");
}

static void test_unknown_key_and_section(void **state)
{
    (void)state;
    load_refused("; comment\n[server]\n\nwrokers = 4\n", 4, "unknown setting [server] wrokers");
    load_refused("[server]\nworkers = 4\n[sever]\nworkers = 4\n", 3, "unknown section [sever]");
    /* A key in the wrong section is unknown there. */
    load_refused("[database]\nworkers = 4\n", 2, "unknown setting [database] workers");
    /* A key before any section. */
    load_refused("workers = 4\n", 1, "unknown setting");
    load_refused("[server]\nthis line is not ini\n", 2, "syntax error");
}

/* Regression: an unknown section with no keys under it was accepted, so a
 * misspelt header silently did nothing. */
static void test_unknown_empty_section_refused(void **state)
{
    (void)state;
    load_refused("[server]\nworkers = 4\n[bogus]\n", 3, "bogus");
}

static void test_first_error_wins(void **state)
{
    (void)state;
    load_refused("[server]\nworkers = 0\nworkers = 9999\nbogus = 1\n", 2, "workers = \"0\"");
}

/* Regression: a syntax error followed by a refused key reported the line of
 * the syntax error with the text of the later key's error. */
static void test_error_text_matches_its_line(void **state)
{
    (void)state;
    conf_t c;
    int rc = conf_load_string("[server]\nthis is not ini\n[server]\nbogus = 1\n", NAME, &c, err,
                              sizeof err);
    assert_int_equal(rc, -1);
    /* Either the first error (line 2, a syntax error) or the key's own line. */
    int line2 = strncmp(err, NAME ":2: ", strlen(NAME ":2: ")) == 0;
    int line4 = strncmp(err, NAME ":4: ", strlen(NAME ":4: ")) == 0;
    if ((line2 && strstr(err, "bogus") != NULL) || (!line2 && !line4))
        fail_msg("error \"%s\": its line and its text do not agree", err);
}

static void test_full_error_text(void **state)
{
    (void)state;
    conf_t c;
    assert_int_equal(conf_load_string("[server]\nlisten = /tmp/s\n\nworkers = 0\n", NAME, &c, err,
                                      sizeof err),
                     -1);
    assert_string_equal(err, NAME ":4: [server] workers = \"0\": out of range");
}

/* Regression: the checks on listen ran after parsing and reported
 * "test.ini: ..." without the line of the listen setting. */
static void test_listen_without_host_names_its_line(void **state)
{
    (void)state;
    load_refused("[server]\nworkers = 2\nlisten = :9000\n", 3, "HOST:PORT");
    load_refused("[server]\nlisten = 9000\n", 2, "HOST:PORT");
}

static void test_listen_bad_port_names_its_line(void **state)
{
    (void)state;
    load_refused("[server]\nlisten = 127.0.0.1:0\n", 2, "port");
    load_refused("[server]\nlisten = 127.0.0.1:70000\n", 2, "port");
    load_refused("[server]\nlisten = localhost:http\n", 2, "port");
}

static void test_listen_empty_names_its_line(void **state)
{
    (void)state;
    load_refused("[server]\nlisten =\n", 2, "listen");
}

static void test_listen_unix_path_too_long_names_its_line(void **state)
{
    (void)state;
    char text[300];
    char path[200];
    memset(path, 'p', sizeof path);
    path[0] = '/';
    path[108] = '\0'; /* 108 bytes: one more than sun_path holds with its NUL */
    snprintf(text, sizeof text, "[server]\nworkers = 2\nlisten = %s\n", path);
    load_refused(text, 3, "107");
}

static void test_listen_accepted_forms(void **state)
{
    (void)state;
    conf_t c;
    load_ok("[server]\nlisten = 127.0.0.1:9000\n", &c);
    assert_string_equal(c.listen, "127.0.0.1:9000");
    conf_free(&c);
    load_ok("[server]\nlisten = [::1]:9000\n", &c);
    conf_free(&c);
    char text[300];
    char path[200];
    memset(path, 'p', sizeof path);
    path[0] = '/';
    path[107] = '\0'; /* the longest unix path that fits */
    snprintf(text, sizeof text, "[server]\nlisten = %s\n", path);
    load_ok(text, &c);
    assert_int_equal(strlen(c.listen), 107);
    conf_free(&c);
}

static void test_later_duplicates_override(void **state)
{
    (void)state;
    conf_t c;
    load_ok("[server]\nworkers = 2\nlisten = /tmp/a.sock\n"
            "[database]\nconninfo = dbname=a\n"
            "[server]\nworkers = 3\nlisten = /tmp/b.sock\n"
            "[database]\nconninfo = dbname=b\n",
            &c);
    assert_int_equal(c.workers, 3);
    assert_string_equal(c.listen, "/tmp/b.sock");
    assert_string_equal(c.db_conninfo, "dbname=b");
    conf_free(&c);
}

/* Regression: lines of 200 bytes or more were cut by inih's line buffer and
 * the rest read as a line of its own; when the rest began with a blank it
 * was taken as a continuation and silently replaced the value. */
static void test_long_line_kept_whole_or_refused(void **state)
{
    (void)state;
    char value[260];
    const char *head = "host=/srv/pg port=5432 application_name=";
    size_t n = strlen(head);
    memcpy(value, head, n);
    /* "conninfo = " is 11 bytes: the blank lands at offset 199 of the line. */
    while (n < 199 - 11)
        value[n++] = 'a';
    snprintf(value + n, sizeof value - n, " dbname=itpm user=itpm_app");
    char text[400];
    snprintf(text, sizeof text, "[database]\nconninfo = %s\nconnect_timeout = 7\n", value);
    conf_t c;
    err[0] = '\0';
    if (conf_load_string(text, NAME, &c, err, sizeof err) == 0) {
        char got[300];
        snprintf(got, sizeof got, "%s", c.db_conninfo);
        conf_free(&c);
        assert_string_equal(got, value);
    } else if (strncmp(err, NAME ":2: ", strlen(NAME ":2: ")) != 0) {
        fail_msg("error \"%s\" does not name line 2", err);
    }
}

/* Regression: a comment line of 200 bytes or more refused the file with
 * "syntax error" on the line after it. A comment is ignored, or the long
 * line is refused as such, at its own line. */
static void test_long_comment_ignored_or_refused_at_its_line(void **state)
{
    (void)state;
    conf_t c;
    char text[400] = "[server]\n; ";
    memset(text + strlen(text), 'c', 300);
    strcat(text, "\nworkers = 3\n");
    err[0] = '\0';
    if (conf_load_string(text, NAME, &c, err, sizeof err) == 0) {
        int workers = c.workers;
        conf_free(&c);
        assert_int_equal(workers, 3);
    } else if (strncmp(err, NAME ":2: ", strlen(NAME ":2: ")) != 0) {
        fail_msg("error \"%s\" does not name line 2", err);
    }
}

static void test_missing_file_refused(void **state)
{
    (void)state;
    conf_t c;
    const char *path = "/nonexistent/itpm/unit-test.ini";
    assert_int_equal(conf_load(path, &c, err, sizeof err), -1);
    assert_int_equal(strncmp(err, path, strlen(path)), 0);
    assert_non_null(strstr(err, "cannot open"));
}

static void test_file_errors_name_path_and_line(void **state)
{
    (void)state;
    char path[] = "/tmp/itpm-test-conf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char text[] = "[server]\nworkers = 2\n\n[database]\nconnect_timeout = 0\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    conf_t c;
    int rc = conf_load(path, &c, err, sizeof err);
    char want[128];
    snprintf(want, sizeof want, "%s:5: [database] connect_timeout = \"0\": out of range", path);
    unlink(path);
    assert_int_equal(rc, -1);
    assert_string_equal(err, want);
}

static void test_file_loads(void **state)
{
    (void)state;
    char path[] = "/tmp/itpm-test-conf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char text[] = "[server]\nworkers = 7\nmax_body = 64k\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    conf_t c;
    int rc = conf_load(path, &c, err, sizeof err);
    unlink(path);
    assert_int_equal(rc, 0);
    assert_int_equal(c.workers, 7);
    assert_int_equal(c.max_body, 65536);
    conf_free(&c);
}

static void test_error_buffer_truncates_safely(void **state)
{
    (void)state;
    conf_t c;
    char small[16];
    memset(small, 'z', sizeof small);
    assert_int_equal(conf_load_string("[server]\nworkers = 0\n", NAME, &c, small, sizeof small),
                     -1);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_int_equal(strncmp(small, NAME ":2: ", strlen(NAME ":2: ")), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_contract_example),
        cmocka_unit_test(test_int_bounds),
        cmocka_unit_test(test_int_must_be_an_integer),
        cmocka_unit_test(test_octal_mode),
        cmocka_unit_test(test_size_suffixes),
        cmocka_unit_test(test_log_level),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_unknown_key_and_section),
        cmocka_unit_test(test_unknown_empty_section_refused),
        cmocka_unit_test(test_first_error_wins),
        cmocka_unit_test(test_error_text_matches_its_line),
        cmocka_unit_test(test_full_error_text),
        cmocka_unit_test(test_listen_without_host_names_its_line),
        cmocka_unit_test(test_listen_bad_port_names_its_line),
        cmocka_unit_test(test_listen_empty_names_its_line),
        cmocka_unit_test(test_listen_unix_path_too_long_names_its_line),
        cmocka_unit_test(test_listen_accepted_forms),
        cmocka_unit_test(test_later_duplicates_override),
        cmocka_unit_test(test_long_line_kept_whole_or_refused),
        cmocka_unit_test(test_long_comment_ignored_or_refused_at_its_line),
        cmocka_unit_test(test_missing_file_refused),
        cmocka_unit_test(test_file_errors_name_path_and_line),
        cmocka_unit_test(test_file_loads),
        cmocka_unit_test(test_error_buffer_truncates_safely),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
