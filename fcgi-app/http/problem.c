/* Problem document writer. */
#include "http/problem.h"

#include "xml/xml_out.h"

#include <stdio.h>
#include <string.h>

static const char fallback[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                               "<problem xmlns=\"urn:ietf:rfc:7807\"><type>about:blank</type>"
                               "<title>Internal Server Error</title><status>500</status></problem>\n";

int problem_render(arena_t *a, const problem_t *p, const char **body, size_t *len)
{
    xml_out_t *x = xml_out_begin(a, "problem", PROBLEM_NS);
    xml_out_text_elem(x, "type", p->rule ? arena_printf(a, "urn:itpm:rule:%s", p->rule)
                                         : "about:blank");
    xml_out_text_elem(x, "title", p->title ? p->title : http_reason(p->status));
    xml_out_int_elem(x, "status", p->status);
    xml_out_text_elem(x, "detail", p->detail);
    xml_out_text_elem(x, "rule", p->rule);
    if (p->nerrors > 0) {
        xml_out_start(x, "errors");
        size_t total = p->nerrors_total > p->nerrors ? p->nerrors_total : p->nerrors;
        xml_out_attr_int(x, "total", (long long)total);
        for (size_t i = 0; i < p->nerrors; i++) {
            xml_out_start(x, "error");
            if (p->errors[i].record > 0)
                xml_out_attr_int(x, "record", p->errors[i].record);
            if (p->errors[i].line > 0)
                xml_out_attr_int(x, "line", p->errors[i].line);
            if (p->errors[i].column > 0)
                xml_out_attr_int(x, "column", p->errors[i].column);
            xml_out_text_elem(x, "message", p->errors[i].message);
            xml_out_end(x);
        }
        xml_out_end(x);
    }
    if (xml_out_finish(x, body, len) < 0) {
        *body = fallback;
        *len = sizeof fallback - 1;
        return -1;
    }
    return 0;
}

void problem_respond(arena_t *a, response_t *res, const problem_t *p)
{
    const char *body;
    size_t len;
    int status = p->status;
    if (problem_render(a, p, &body, &len) < 0)
        status = 500;
    response_body(res, status, "application/problem+xml", body, len);
}

void problem_simple(arena_t *a, response_t *res, int status, const char *detail, const char *rule)
{
    problem_t p = {.status = status, .detail = detail, .rule = rule};
    problem_respond(a, res, &p);
}
