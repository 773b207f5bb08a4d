#!/usr/bin/env python3
"""Write a bulk batch (POST /api/v1/batches) of N records to a file, record by
record (memory does not grow with N), optionally with invalid records at
chosen positions and the same rows as CSV for a `psql \\copy` baseline.

    gen_batch.py --out FILE --records N [--id ID] [--region 321322]
                 [--unit 321322-AGRI] [--kind projects|existing] [--submit]
                 [--urgent REASON] [--year-start 2031] [--per-year 90000]
                 [--ref-prefix r] [--tag TEXT] [--invalid POS:KIND ...]
                 [--csv FILE] [--csv-dir DIR [--id-start 1] [--batch-pk 1]
                 [--actor NAME] [--role county_admin]]

Records are <project ref="{prefix}{i}"> of type i:batchProject
(xsd/itpm.xsd), about 560 bytes each, 14 lines each (one more with
--urgent or an unknown element). Record i
(1-based) gets year year_start + (i-1) // per_year and the serial
(i-1) % per_year + 1 within it, so its code would be
{region}-{year}-{serial:05} when the year has no projects yet (the CSV
writes those codes). KIND of --invalid (record positions are 1-based):

    schema           budget with three decimals (the <budget> line)
    schema:element   an unknown element after <summary>
    unit             a unit of another region (321323-EDU, or 321322-AGRI
                     when the batch is for 321323)
    dupref           the ref of record 1 again
    existingref:REF  the given ref (one that already exists in the region)
    category         category that does not fit the kind (existing in a
                     projects batch, new in an existing batch)

Prints one JSON line: records, bytes, sha256 of the file, lines, and
"invalid": [{"record", "kind", "line" (the line of the record's <project
start tag), "error_line" (the offending element's line for schema errors,
else the same as line)}].

--csv FILE writes the projects rows only (header line first, the columns of
CSV_COLUMNS). --csv-dir DIR writes every row batch_apply() (sql/006_batches.sql)
stores for the batch, as three CSV files with a header line each:

    projects.csv        id (record i gets id_start + i - 1), then CSV_COLUMNS,
                        then created_by (the actor), batch_id (batch_pk),
                        batch_record (i) and source_ref (the record's ref; an
                        empty field, NULL, with --no-ref)
    data_resources.csv  project_id, code, name, source, share, frequency,
                        aggregated: one row per <resource> (one per record)
    project_events.csv  project_id, actor, role, action, from_stage, to_stage,
                        reason: 'create' from NULL (an empty field) to the
                        record's stage ('draft' with --submit), reason
                        'batch {id}'; with --submit also 'submit' from 'draft'
"""

import argparse
import hashlib
import json
import os
import sys
from xml.sax.saxutils import escape, quoteattr

NS = 'urn:itpm:1'
HEAD_LINES = 2  # XML declaration, <batch> start tag

TITLES = ('智慧农业平台', '数据共享系统', '城市运行中心', '教育服务平台',
          '健康信息平台', '应急指挥系统', '不动产登记系统', '网格治理平台')
SOURCES = ('sensor', 'business', 'survey', 'external', 'other')
FREQ = ('realtime', 'hourly', 'daily', 'weekly', 'monthly', 'yearly')
FUNDING = ('fiscal', 'self', 'mixed')

CSV_COLUMNS = ('code', 'region', 'unit', 'year', 'serial', 'title', 'category',
               'budget_requested_fen', 'funding', 'construction_mode', 'schedule_start',
               'schedule_end', 'contact_name', 'contact_phone', 'contact_email', 'summary')
RESOURCE_COLUMNS = ('project_id', 'code', 'name', 'source', 'share', 'frequency', 'aggregated')
# --csv-dir projects.csv only, after CSV_COLUMNS: what batch_apply() also
# writes into each project row.
BATCH_COLUMNS = ('created_by', 'batch_id', 'batch_record', 'source_ref')
EVENT_COLUMNS = ('project_id', 'actor', 'role', 'action', 'from_stage', 'to_stage', 'reason')


def parse_invalid(specs, n):
    out = {}
    for spec in specs or ():
        pos, _, kind = spec.partition(':')
        try:
            pos = int(pos)
        except ValueError:
            sys.exit(f'--invalid {spec}: POS must be an integer')
        if not 1 <= pos <= n:
            sys.exit(f'--invalid {spec}: POS must be within 1..{n}')
        base, _, arg = kind.partition(':')
        if base not in ('schema', 'unit', 'dupref', 'existingref', 'category'):
            sys.exit(f'--invalid {spec}: unknown kind {base!r}')
        if base == 'existingref' and not arg:
            sys.exit(f'--invalid {spec}: existingref needs :REF')
        if base == 'dupref' and pos == 1:
            sys.exit(f'--invalid {spec}: a duplicate ref needs an earlier record')
        if base == 'schema' and arg not in ('', 'budget', 'element'):
            sys.exit(f'--invalid {spec}: schema variants are budget and element')
        if pos in out:
            sys.exit(f'--invalid {spec}: record {pos} is already invalid')
        out[pos] = (base, arg)
    return out


def csv_field(s):
    if any(c in s for c in ',"\n\r'):
        return '"' + s.replace('"', '""') + '"'
    return s


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', required=True)
    ap.add_argument('--records', type=int, required=True)
    ap.add_argument('--id', default=None, help='batch id (default: gen-{records})')
    ap.add_argument('--region', default='321322')
    ap.add_argument('--unit', default=None, help='default: {region}-AGRI for 321322, '
                    '{region}-EDU for 321323, else {region}-DATA')
    ap.add_argument('--kind', choices=('projects', 'existing'), default='projects')
    ap.add_argument('--submit', action='store_true')
    ap.add_argument('--urgent', default=None, metavar='REASON',
                    help='mark every record urgent with this reason')
    ap.add_argument('--year-start', type=int, default=2031)
    ap.add_argument('--per-year', type=int, default=90000)
    ap.add_argument('--ref-prefix', default='r')
    ap.add_argument('--no-ref', action='store_true', help='records without ref')
    ap.add_argument('--tag', default='', help='text added to every title (to find the rows)')
    ap.add_argument('--invalid', action='append', metavar='POS:KIND')
    ap.add_argument('--csv', default=None, help='the projects rows as CSV')
    ap.add_argument('--csv-dir', default=None, metavar='DIR',
                    help='every stored row as CSV: DIR/projects.csv (with ids), '
                    'DIR/data_resources.csv, DIR/project_events.csv')
    ap.add_argument('--id-start', type=int, default=1,
                    help='--csv-dir: project id of record 1 (default 1)')
    ap.add_argument('--batch-pk', type=int, default=1,
                    help='--csv-dir: the projects\' batch_id, the id of their batches '
                    'row (default 1)')
    ap.add_argument('--actor', default='gen',
                    help='--csv-dir: projects\' created_by, events\' actor (default gen)')
    ap.add_argument('--role', default='county_admin',
                    help='--csv-dir: events\' role (default county_admin)')
    a = ap.parse_args(argv)

    n = a.records
    if n < 1:
        sys.exit('--records must be at least 1')
    if not 1 <= a.per_year <= 99999:
        sys.exit('--per-year must be within 1..99999')
    last_year = a.year_start + (n - 1) // a.per_year
    if a.year_start < 2000 or last_year > 2100:
        sys.exit(f'years {a.year_start}..{last_year} are outside 2000..2100')
    region = a.region
    unit = a.unit or {'321322': '321322-AGRI', '321323': '321323-EDU'}.get(region,
                                                                          f'{region}-DATA')
    other_unit = '321322-AGRI' if region == '321323' else '321323-EDU'
    batch_id = a.id or f'gen-{n}'
    category = 'existing' if a.kind == 'existing' else 'new'
    wrong_category = 'new' if a.kind == 'existing' else 'existing'
    invalid = parse_invalid(a.invalid, n)
    if a.id_start < 1:
        sys.exit('--id-start must be at least 1')
    if a.batch_pk < 1:
        sys.exit('--batch-pk must be at least 1')
    # The stage batch_apply() gives the projects, and the events it writes.
    stage = ('operation' if a.kind == 'existing' else
             'endorsement' if a.submit else 'draft')
    ev_actor = csv_field(a.actor)
    # created_by is NOT NULL: an empty actor is a quoted empty string, not NULL.
    created_by = ev_actor or '""'
    ev_role = csv_field(a.role)
    ev_reason = csv_field(f'batch {batch_id}')
    ev_tail = [f',{ev_actor},{ev_role},create,,{"draft" if a.submit else stage},{ev_reason}\n']
    if a.submit:
        ev_tail.append(f',{ev_actor},{ev_role},submit,draft,{stage},{ev_reason}\n')
    prefix = a.ref_prefix
    tag = (' ' + a.tag) if a.tag else ''
    urgent = (f'<urgent reason={quoteattr(a.urgent)}/>\n' if a.urgent is not None
              else '')

    sha = hashlib.sha256()
    size = 0
    report = []
    out = open(a.out, 'wb', buffering=1 << 20)
    csv = open(a.csv, 'w', encoding='utf-8', newline='\n', buffering=1 << 20) if a.csv else None
    if a.csv_dir:
        os.makedirs(a.csv_dir, exist_ok=True)

        def csv_out(name):
            return open(os.path.join(a.csv_dir, name), 'w', encoding='utf-8', newline='\n',
                        buffering=1 << 20)
        csv_p, csv_r, csv_e = (csv_out('projects.csv'), csv_out('data_resources.csv'),
                               csv_out('project_events.csv'))
        csv_p.write('id,' + ','.join(CSV_COLUMNS + BATCH_COLUMNS) + '\n')
        csv_r.write(','.join(RESOURCE_COLUMNS) + '\n')
        csv_e.write(','.join(EVENT_COLUMNS) + '\n')
    else:
        csv_p = csv_r = csv_e = None
    chunk = []

    def flush():
        nonlocal size
        data = ''.join(chunk).encode('utf-8')
        chunk.clear()
        sha.update(data)
        size += len(data)
        out.write(data)

    submit = ' submit="true"' if a.submit else ''
    chunk.append('<?xml version="1.0" encoding="UTF-8"?>\n')
    chunk.append(f'<batch xmlns="{NS}" id={quoteattr(batch_id)} region="{region}" '
                 f'kind="{a.kind}"{submit}>\n')
    if csv:
        csv.write(','.join(CSV_COLUMNS) + '\n')

    contact = '<contact name="王芳" phone="0527-88880000" email="wf@example.gov.cn"/>\n'
    flags = '<flags key="false"/>\n'
    line = HEAD_LINES + 1  # line of the next record's <project start tag
    for i in range(1, n + 1):
        year = a.year_start + (i - 1) // a.per_year
        serial = (i - 1) % a.per_year + 1
        fen = 10_000_000 + (i * 7919) % 39_000_000  # 100,000.00 .. 489,999.99
        budget = f'{fen // 100}.{fen % 100:02d}'
        t = TITLES[i % len(TITLES)]
        title = f'{t} 第{i}号{tag}'
        funding = FUNDING[i % 3]
        rec_unit = unit
        rec_category = category
        ref = f'{prefix}{i}'
        budget_line = f'<budget>{budget}</budget>\n'
        extra = ''
        bad = invalid.get(i)
        error_line = line
        if bad:
            kind, arg = bad
            if kind == 'schema':
                if arg == 'element':
                    extra = '<unknownElement>x</unknownElement>\n'
                    error_line = line + 12
                else:
                    budget_line = f'<budget>{fen // 100}.{fen % 100:02d}5</budget>\n'
                    error_line = line + 6
            elif kind == 'unit':
                rec_unit = other_unit
            elif kind == 'dupref':
                ref = f'{prefix}1'
            elif kind == 'existingref':
                ref = arg
            elif kind == 'category':
                rec_category = wrong_category
            report.append({'record': i, 'kind': kind + (':' + arg if arg else ''),
                           'line': line, 'error_line': error_line})
        summary = f'建设内容{i}'
        refattr = '' if a.no_ref else f' ref={quoteattr(ref)}'
        code = f'{region}-{year}-{serial:05d}'
        block = (f'<project{refattr}>\n'
                 f'<title>{escape(title)}</title>\n'
                 f'<unit>{rec_unit}</unit>\n'
                 f'<year>{year}</year>\n'
                 f'<category>{rec_category}</category>\n'
                 f'{flags}'
                 f'{urgent}'
                 f'{budget_line}'
                 f'<funding>{funding}</funding>\n'
                 '<construction mode="centralized"/>\n'
                 f'<schedule start="{year}-03-01" end="{year}-12-31"/>\n'
                 f'{contact}'
                 f'<summary>{summary}</summary>\n'
                 f'{extra}'
                 f'<dataResources><resource code="DR{i}" source="{SOURCES[i % 5]}" '
                 f'share="conditional" frequency="{FREQ[i % 6]}">'
                 f'<name>数据{i}</name></resource></dataResources>\n'
                 '</project>\n')
        chunk.append(block)
        line += block.count('\n')
        if csv or csv_p:
            row = (f'{code},{region},{rec_unit},{year},{serial},{csv_field(title)},'
                   f'{rec_category},{fen},{funding},centralized,{year}-03-01,'
                   f'{year}-12-31,王芳,0527-88880000,wf@example.gov.cn,'
                   f'{csv_field(summary)}\n')
            if csv:
                csv.write(row)
            if csv_p:
                pid = a.id_start + i - 1
                source_ref = '' if a.no_ref else csv_field(ref)
                csv_p.write(f'{pid},{row[:-1]},{created_by},{a.batch_pk},{i},{source_ref}\n')
                csv_r.write(f'{pid},DR{i},{csv_field(f"数据{i}")},{SOURCES[i % 5]},'
                            f'conditional,{FREQ[i % 6]},false\n')
                for t in ev_tail:
                    csv_e.write(f'{pid}{t}')
        if len(chunk) >= 2048:
            flush()
    chunk.append('</batch>\n')
    flush()
    out.close()
    if csv:
        csv.close()
    if csv_p:
        for f in (csv_p, csv_r, csv_e):
            f.close()
    # error lines of schema errors were computed for the plain block: shift
    # them by the urgent line when present (it comes before <budget>).
    if a.urgent is not None:
        for r in report:
            if r['kind'].startswith('schema'):
                r['error_line'] += 1
    print(json.dumps({'records': n, 'bytes': size, 'sha256': sha.hexdigest(),
                      'lines': line, 'id': batch_id, 'region': region,
                      'invalid': report}))


if __name__ == '__main__':
    main()
