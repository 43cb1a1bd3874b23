/* fuzz_xlsx_xml.c - libFuzzer target for the XLSX parts' XML (src/parse/
 * xlsx*.c) without the zip in the way: a small valid workbook is served from
 * memory and one of its parts comes from the input instead.
 * Input: a mode byte, then the part's XML. Mode bits 0-2 pick the part (1
 * shared strings, 2 styles, 3 workbook, 4 relationships, else the sheet);
 * bit 3 header; bit 4 small limits; bit 5 resume; bit 6 the 1904 date system;
 * bit 7 leaves the shared strings and styles out. Each part is read twice, in
 * one go and in small reads of input-dependent sizes: every record must keep
 * parse.h's contract and both runs must agree on the records, the row errors,
 * and the class of a fatal error (expat's wording of a malformed document, at
 * "line 1, column 7: junk after document element" or "column 9: invalid
 * token", depends on where its input buffer ended). */
#include "fuzz_xlsx.h"

#define NS  "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
#define RNS "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
#define PKG "http://schemas.openxmlformats.org/package/2006/relationships"

enum { P_WORKBOOK, P_RELS, P_STYLES, P_SST, P_SHEET, NPARTS };

static const char *const k_names[NPARTS] = {"xl/workbook.xml", "xl/_rels/workbook.xml.rels",
                                            "xl/styles.xml", "xl/sharedStrings.xml",
                                            "xl/worksheets/sheet1.xml"};

static const char k_workbook[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<workbook xmlns=\"" NS "\" xmlns:r=\"" RNS "\">"
    "<workbookPr/><sheets><sheet name=\"S\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>";

static const char k_workbook_1904[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<workbook xmlns=\"" NS "\" xmlns:r=\"" RNS "\">"
    "<workbookPr date1904=\"1\"/><sheets><sheet name=\"S\" sheetId=\"1\" r:id=\"rId1\"/>"
    "</sheets></workbook>";

static const char k_rels[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Relationships xmlns=\"" PKG "\">"
    "<Relationship Id=\"rId1\" Type=\"" RNS "/worksheet\" Target=\"worksheets/sheet1.xml\"/>"
    "<Relationship Id=\"rId2\" Type=\"" RNS "/styles\" Target=\"styles.xml\"/>"
    "<Relationship Id=\"rId3\" Type=\"" RNS "/sharedStrings\" Target=\"sharedStrings.xml\"/>"
    "</Relationships>";

static const char k_styles[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<styleSheet xmlns=\"" NS "\">"
    "<numFmts count=\"4\"><numFmt numFmtId=\"164\" formatCode=\"dd/mm/yyyy\\ hh:mm\"/>"
    "<numFmt numFmtId=\"165\" formatCode=\"[h]:mm:ss\"/>"
    "<numFmt numFmtId=\"166\" formatCode=\"0.00&quot; days&quot;\"/>"
    "<numFmt numFmtId=\"167\" formatCode=\"yyyy-mm-dd;@\"/></numFmts>"
    "<cellXfs count=\"7\"><xf numFmtId=\"0\"/><xf numFmtId=\"164\"/><xf numFmtId=\"165\"/>"
    "<xf numFmtId=\"166\"/><xf numFmtId=\"167\"/><xf numFmtId=\"14\"/><xf numFmtId=\"20\"/>"
    "</cellXfs></styleSheet>";

static const char k_sst[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<sst xmlns=\"" NS "\" count=\"5\" "
    "uniqueCount=\"5\"><si><t>id</t></si>"
    "<si><r><t>ri</t></r><r><rPr><b/></rPr><t xml:space=\"preserve\">ch </t></r></si>"
    "<si><t>\xE6\xBC\xA2\xE5\xAD\x97</t><rPh sb=\"0\" eb=\"2\"><t>kanji</t></rPh></si>"
    "<si><t>line_x000D_ break</t></si><si><t/></si></sst>";

static const char k_sheet[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<worksheet xmlns=\"" NS "\">"
    "<dimension ref=\"A1:F4\"/><sheetData>"
    "<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c><c r=\"B1\" t=\"s\"><v>1</v></c>"
    "<c r=\"C1\" t=\"inlineStr\"><is><t>in</t></is></c><c r=\"E1\" t=\"str\"><v>id</v></c></row>"
    "<row><c t=\"s\"><v>2</v></c><c t=\"s\"><v>3</v></c><c t=\"n\"><v>+5</v></c>"
    "<c><v>1e22</v></c><c t=\"b\"><v>1</v></c></row>"
    "<row r=\"4\"><c r=\"A4\" s=\"1\"><v>45000.75</v></c><c r=\"B4\" s=\"2\"><v>0.52</v></c>"
    "<c r=\"C4\" s=\"5\"><v>45000</v></c><c r=\"D4\" t=\"e\"><v>#N/A</v></c>"
    "<c r=\"E4\" t=\"d\"><v>2024-02-29T12:34:56</v></c><c r=\"F4\" s=\"6\"><v>0.75</v></c>"
    "</row></sheetData></worksheet>";

enum {
    M_PART = 7,
    M_HEADER = 8,
    M_SMALL = 16,
    M_RESUME = 32,
    M_1904 = 64,
    M_BARE = 128,
};

/* The workbook in memory: each part's bytes (NULL: absent); opens counted. */
typedef struct mem_book {
    const uint8_t *data[NPARTS];
    size_t len[NPARTS];
    int chunked;
    uint64_t seed;
    int opens, closes;
} mem_book;

/* part_open is the di_part_open_fn: a stream over the part's bytes. */
static int part_open(void *ctx, const char *name, di_read_fn *read, void **out, di_error *err) {
    (void)err;
    mem_book *b = ctx;
    for (int i = 0; i < NPARTS; i++) {
        if (strcmp(name, k_names[i]) != 0 || !b->data[i])
            continue;
        fz_in *in = malloc(sizeof *in);
        FUZZ_CHECK(in != NULL);
        fz_in_init(in, b->data[i], b->len[i], b->chunked, b->seed + (uint64_t)i);
        *read = fz_read;
        *out = in;
        b->opens++;
        return 1;
    }
    return 0;
}

/* part_close is the di_part_close_fn. */
static void part_close(void *ctx, void *part) {
    ((mem_book *)ctx)->closes++;
    free(part);
}

/* set_part puts a fixed part in the book. */
static void set_part(mem_book *b, int i, const char *s) {
    b->data[i] = (const uint8_t *)s;
    b->len[i] = strlen(s);
}

/* which_part maps the mode's part bits to the part the input replaces. */
static int which_part(unsigned mode) {
    static const int parts[8] = {P_SHEET, P_SST,   P_STYLES, P_WORKBOOK,
                                 P_RELS,  P_SHEET, P_SHEET,  P_SHEET};
    return parts[mode & M_PART];
}

/* book_init fills the book: the fixed parts, then the input's part. */
static void book_init(mem_book *b, unsigned mode, const uint8_t *xml, size_t len) {
    memset(b, 0, sizeof *b);
    set_part(b, P_WORKBOOK, mode & M_1904 ? k_workbook_1904 : k_workbook);
    set_part(b, P_RELS, k_rels);
    set_part(b, P_SHEET, k_sheet);
    if (!(mode & M_BARE)) {
        set_part(b, P_STYLES, k_styles);
        set_part(b, P_SST, k_sst);
    }
    int i = which_part(mode);
    b->data[i] = xml;
    b->len[i] = len;
}

/* run reads the workbook once; returns the digest of what it produced. */
static uint64_t run(unsigned mode, const uint8_t *xml, size_t len, int chunked, uint64_t seed,
                    const fz_xlsx_opts *o) {
    mem_book b;
    book_init(&b, mode, xml, len);
    b.chunked = chunked;
    b.seed = seed;
    uint64_t d = fz_xlsx_book(part_open, part_close, &b, o);
    FUZZ_CHECK(b.opens == b.closes);
    return d;
}

/* LLVMFuzzerTestOneInput: the workbook must not depend on read sizes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    unsigned mode = data[0];
    uint64_t seed = fz_hash(data, size), rng = seed;
    fz_xlsx_opts o;
    fz_xlsx_opts_init(&o, fz_next(&rng), (mode & M_HEADER) != 0, (mode & M_SMALL) != 0,
                      (mode & M_RESUME) != 0);
    size_t sheet_len = which_part(mode) == P_SHEET ? size - 1 : strlen(k_sheet);
    o.x.last_offset = (int64_t)sheet_len;
    o.x.max_calls = sheet_len + 2;
    o.x.loose_errors = 1; /* expat words some malformations by where its buffer ended */
    uint64_t whole = run(mode, data + 1, size - 1, 0, rng, &o);
    uint64_t pieces = run(mode, data + 1, size - 1, 1, rng, &o);
    FUZZ_CHECK(whole == pieces);
    return 0;
}
