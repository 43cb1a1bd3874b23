/* xlsx.h - private to src/parse/ and the reader: an XLSX workbook's sheets as
 * parsers. The workbook is a zip; this module never touches the zip itself: it
 * asks for parts (xl/workbook.xml, xl/_rels/workbook.xml.rels, xl/styles.xml,
 * xl/sharedStrings.xml, xl/worksheets/sheetN.xml) by name through a callback,
 * and streams each part's XML through expat. */
#ifndef DI_PARSE_XLSX_H
#define DI_PARSE_XLSX_H

#include <stddef.h>
#include <stdint.h>
#include "dsa_ingest/parse.h"

/* di_part_open_fn opens the part `name` (a path inside the zip, no leading
 * slash) for reading: 1 with *read and *part set, 0 when there is no such
 * part, -1 with err set. di_part_close_fn releases what open returned. */
typedef int (*di_part_open_fn)(void *ctx, const char *name, di_read_fn *read, void **part,
                               di_error *err);
typedef void (*di_part_close_fn)(void *ctx, void *part);

typedef struct di_xlsx_limits {
    size_t max_xml_depth;    /* nesting of XML elements (default 256) */
    size_t max_shared_bytes; /* bytes of the shared-string table kept in memory (default 256 MiB) */
    size_t max_cell;         /* bytes in one cell's text (default: the parse opts' max_field) */
    size_t max_columns;      /* columns in one sheet (default 16384, Excel's limit) */
} di_xlsx_limits;

typedef struct di_xlsx di_xlsx;

/* di_xlsx_open reads the workbook, its relationships, the styles (which number
 * formats are dates) and the shared strings. The callbacks and ctx must outlive
 * the handle. A workbook without sheets is an input error. */
di_xlsx *di_xlsx_open(di_part_open_fn open, di_part_close_fn close, void *ctx,
                      const di_xlsx_limits *lim, di_error *err);

size_t di_xlsx_sheet_count(const di_xlsx *x);
const char *di_xlsx_sheet_name(const di_xlsx *x, size_t i); /* workbook order */

/* di_xlsx_sheet_parser streams sheet i as records (opts->header: the first
 * row names the columns). record.row is the sheet's row number; kinds tag
 * numbers and booleans as JSON, empty cells as null, dates as ISO 8601 text.
 * opts->start_row > 1 skips rows before it (resume), with opts->resume_columns
 * as the columns. The parser must be freed before the workbook. */
di_parser *di_xlsx_sheet_parser(di_xlsx *x, size_t i, const di_parse_opts *opts, di_error *err);

void di_xlsx_close(di_xlsx *x); /* accepts NULL */

#endif
