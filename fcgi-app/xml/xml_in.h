/* Reading XML request bodies: parsed with the network off, no DTD, no
 * entity substitution and no external resource of any kind, then validated
 * against the schemas compiled once by the master before it forks. */
#ifndef ITPM_XML_IN_H
#define ITPM_XML_IN_H

#include "core/arena.h"
#include "http/problem.h"
#include "http/response.h"

#include <libxml/tree.h>

#define ITPM_NS "urn:itpm:1"
#define XML_IN_MAX_ERRORS 50

/* Compiles every schema the API uses from dir; -1 if one does not compile
 * (the daemon then refuses to start). Installs the entity loader that refuses
 * every external resource. Call once, before forking. */
int xml_in_init(const char *xsd_dir);
void xml_in_cleanup(void);
/* The compiled API schema (NULL before xml_in_init), for streaming readers. */
struct _xmlSchema *xml_in_schema(void);

/* Parses and validates body; the root must be {urn:itpm:1}root. On success
 * returns the document (freed when the arena resets). On failure answers res
 * with 400 (not well-formed, DOCTYPE, wrong root) or 422 (schema-invalid,
 * each error with its line and column) and returns NULL. */
xmlDocPtr xml_in_parse(arena_t *a, const char *body, size_t len, const char *root,
                       response_t *res);

/* Helpers over a validated document: the first child element in the itpm
 * namespace named name, and its text content (arena copy, "" when empty). */
xmlNodePtr xml_child(xmlNodePtr parent, const char *name);
const char *xml_child_text(arena_t *a, xmlNodePtr parent, const char *name);
const char *xml_attr(arena_t *a, xmlNodePtr node, const char *name);
/* An attribute of a type whose white space the schema collapses (xs:date,
 * xs:boolean, numbers), without it: " 2030-01-02 " is valid and means
 * 2030-01-02. NULL when absent. */
const char *xml_attr_token(arena_t *a, xmlNodePtr node, const char *name);
/* An xs:boolean's value v (white space around it allowed): 1 for "true" or
 * "1", 0 otherwise; absent when v is NULL. */
int xml_bool(const char *v, int absent);
/* The text content of node (arena copy, "" when empty). */
const char *xml_text(arena_t *a, xmlNodePtr node);

#endif
