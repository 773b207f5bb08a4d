/* libFuzzer target for the bulk-submission reader: the input is a body as
 * a county system would send it, fed to batch_parse in chunks whose size
 * the first byte chooses (so element and character boundaries fall
 * everywhere), and every record the parser delivers goes through
 * declaration_read as the batch handler does. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/arena.h"
#include "xml/batch_parse.h"
#include "domain/declaration.h"
#include "xml/xml_in.h"

#ifndef ITPM_SOURCE_DIR
#error "ITPM_SOURCE_DIR must name the repository root"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    arena_t *arena;
    batch_parser_t *parser;
} fuzz_ctx_t;

/* Handlers stop the reading as the batch handler does (a refused head, a
 * database error on a record), chosen by the input. */
static int on_head(void *data, const batch_head_t *head)
{
    (void)data;
    return head->id[0] == 's' ? -1 : 0;
}

static int on_record(void *data, long index, int line, int column, xmlNodePtr node)
{
    fuzz_ctx_t *c = data;
    arena_reset(c->arena);
    declaration_t d;
    problem_error_t err = {0, 0, NULL, 0};
    if (declaration_read(c->arena, node, &d, &err) < 0)
        batch_parse_error(c->parser, index, line, column, err.message);
    return index == 3 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (xml_in_init(ITPM_SOURCE_DIR "/xsd") < 0)
            abort();
        ready = 1;
    }
    if (size == 0)
        return 0;
    size_t chunk = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    fuzz_ctx_t c = {arena_create(4096), NULL};
    batch_handlers_t h = {&c, on_head, on_record};
    c.parser = batch_parser_new(&h, 8, 1000);
    if (c.arena == NULL || c.parser == NULL)
        abort();
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        if (batch_parser_feed(c.parser, (const char *)data + off, n) < 0)
            break;
    }
    batch_parser_finish(c.parser);
    size_t kept, total;
    batch_parser_errors(c.parser, &kept, &total);
    if (kept > total)
        abort();
    batch_parser_free(c.parser);
    arena_destroy(c.arena);
    return 0;
}
