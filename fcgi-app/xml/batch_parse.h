/* The streaming reader of bulk submissions: a <batch> document fed in
 * chunks, validated against the API schema as it is parsed (libxml2's push
 * parser with the schema plugged into its SAX events), handing each record
 * to the caller as a small tree that is freed once the caller returns, so
 * memory does not grow with the file. Knows nothing of HTTP or PostgreSQL. */
#ifndef ITPM_BATCH_PARSE_H
#define ITPM_BATCH_PARSE_H

#include "http/problem.h"

#include <libxml/tree.h>
#include <stddef.h>

#define BATCH_ID_MAX 64

typedef struct {
    char id[BATCH_ID_MAX + 1];
    char region[8];
    char kind[16];
    int submit;
} batch_head_t;

typedef struct {
    void *data;
    /* The root's attributes, checked; once per document, before any record.
     * Return 0 to go on, -1 to stop reading (the caller has its answer). */
    int (*on_head)(void *data, const batch_head_t *head);
    /* A record that passed the schema: index from 1, where its start tag
     * ends, the element. Return 0 to go on, -1 to stop. A record error is
     * reported with batch_parse_error() and 0 returned. */
    int (*on_record)(void *data, long index, int line, int column, xmlNodePtr node);
} batch_handlers_t;

typedef enum {
    BATCH_PARSE_OK = 0,
    BATCH_PARSE_STOPPED,   /* a handler said stop */
    BATCH_PARSE_MALFORMED, /* not well-formed, a DOCTYPE, too deep: 400 */
    BATCH_PARSE_TOO_MANY,  /* more records than allowed: 413 */
    BATCH_PARSE_TOO_LARGE, /* one record over BATCH_MAX_RECORD_BYTES: 413 */
    BATCH_PARSE_INVALID,   /* another root, schema or record errors: 422 */
} batch_parse_status_t;

/* A record is built as a tree before it is checked and stored, and a tree
 * takes about fourteen times its text: without a bound one record could take
 * a worker's memory however well the batch streams. The largest record the
 * schema accepts (a thousand data resources) is a few hundred kilobytes. */
#define BATCH_MAX_RECORD_BYTES (2L * 1024 * 1024)

typedef struct batch_parser batch_parser_t;

/* max_errors bounds the errors kept (all are counted); max_records the
 * records accepted. NULL when out of memory or without a compiled schema. */
batch_parser_t *batch_parser_new(const batch_handlers_t *h, size_t max_errors, long max_records);
void batch_parser_free(batch_parser_t *p);
/* Parses the next n bytes; 0 to go on, -1 once the outcome is decided. */
int batch_parser_feed(batch_parser_t *p, const char *buf, size_t n);
/* Ends the document and gives the outcome. */
batch_parse_status_t batch_parser_finish(batch_parser_t *p);
/* Adds an error found by the caller in a record (index 0: the whole batch). */
void batch_parse_error(batch_parser_t *p, long record, int line, int column, const char *message);
/* The errors kept (valid until the parser is freed), and how many there were. */
const problem_error_t *batch_parser_errors(const batch_parser_t *p, size_t *kept, size_t *total);
long batch_parser_records(const batch_parser_t *p);
/* The message of a malformed document (NULL otherwise). */
const char *batch_parser_malformed(const batch_parser_t *p);
/* Where the parser found it malformed (0 when unknown). */
void batch_parser_position(const batch_parser_t *p, int *line, int *column);

#endif
