/* test_checkpoint.c - the checkpoint survives its JSON form exactly (window
 * included), base64 round-trips, settings parse and refuse junk, and error
 * messages carry their location. */
#include "check.h"
#include "dsa_ingest/job.h"
#include "job/checkpoint.h"
#include "job/stage.h"
#include "util/base64.h"

#include <stdlib.h>

/* test_base64 round-trips every length from 0 to 40 and rejects junk. */
static void test_base64(void) {
    unsigned char in[40], out[40];
    char enc[64];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof in; n++) {
        di_base64_encode(in, n, enc);
        long m = di_base64_decode(enc, out, sizeof out);
        CHECK_INT(m, (long)n);
        CHECK(memcmp(in, out, n) == 0);
    }
    di_base64_encode((const unsigned char *)"foob", 4, enc);
    CHECK_STR(enc, "Zm9vYg==");
    CHECK_INT(di_base64_decode("Zm9v!g==", out, sizeof out), -1);
    CHECK_INT(di_base64_decode("Zm9", out, sizeof out), -1);
}

/* test_roundtrip writes a gzip checkpoint and reads it back. */
static void test_roundtrip(void) {
    di_checkpoint cp, back;
    di_error err;
    di_checkpoint_init(&cp);
    snprintf(cp.commit_id, sizeof cp.commit_id, "%064d", 7);
    snprintf(cp.etag, sizeof cp.etag, "\"abc-1\"");
    cp.size = 251658240;
    cp.pos.row_number = 4100001;
    cp.rows = 4100000;
    cp.batches = 410;
    cp.bytes_read = 104857600;
    cp.stage = (di_stage_state){16, 0xFFFF, 0x8021}; /* a staged load, merging */
    const char *cols[] = {"id", "naïve \"x\"", ""};
    CHECK_INT(di_reader_pos_set_header(&cp.pos, cols, 3), 0);
    cp.pos.has_point = 1;
    cp.pos.point = (di_decode_point){.kind = DI_COMP_GZIP,
                                     .in_offset = 38000001,
                                     .bits = 3,
                                     .out_offset = 412000000,
                                     .skip = 1234,
                                     .window_len = 32768};
    for (size_t i = 0; i < cp.pos.point.window_len; i++)
        cp.pos.point.window[i] = (unsigned char)(i * 7);
    char *progress = di_progress_json(&cp, "running", "https://h/d.csv.gz");
    CHECK(progress != NULL);
    size_t plen = strlen(progress);
    char *rp = malloc(plen + 32);
    snprintf(rp, plen + 32, "{\"progress\":%s}", progress);
    di_checkpoint_init(&back);
    CHECK_INT(di_checkpoint_parse(&back, rp, &err), 0);
    CHECK_STR(back.commit_id, cp.commit_id);
    CHECK_STR(back.etag, cp.etag);
    CHECK_INT(back.size, cp.size);
    CHECK_INT(back.pos.row_number, cp.pos.row_number);
    CHECK_INT(back.rows, cp.rows);
    CHECK_INT(back.batches, cp.batches);
    CHECK_INT(back.stage.parts, 16);
    CHECK_INT(back.stage.rows_merged, 0xFFFF);
    CHECK_INT(back.stage.manifest_merged, 0x8021);
    CHECK(strstr(progress, "\"manifest_merged\":[0,5,15]") != NULL);
    CHECK_INT(back.pos.nheader, 3);
    CHECK_STR(back.pos.header_names[1], "naïve \"x\"");
    CHECK_INT(back.pos.has_point, 1);
    CHECK_INT(back.pos.point.kind, DI_COMP_GZIP);
    CHECK_INT(back.pos.point.in_offset, 38000001);
    CHECK_INT(back.pos.point.bits, 3);
    CHECK_INT(back.pos.point.out_offset, 412000000);
    CHECK_INT(back.pos.point.skip, 1234);
    CHECK_INT(back.pos.point.window_len, 32768);
    CHECK(memcmp(back.pos.point.window, cp.pos.point.window, 32768) == 0);
    CHECK(strstr(progress, "\"offset\":38000000") != NULL); /* in_offset - 1 when bits > 0 */
    CHECK(strstr(progress, "\"percentage\":41.7") != NULL);
    free(rp);
    free(progress);
    di_checkpoint_cleanup(&cp);
    di_checkpoint_cleanup(&back);
}

/* test_finished: the ranges committed beyond the watermark survive the JSON
 * form, and di_progress_patch replaces them and the counters, nothing else. */
static void test_finished(void) {
    di_checkpoint cp, back;
    di_error err;
    di_checkpoint_init(&cp);
    snprintf(cp.commit_id, sizeof cp.commit_id, "%064d", 9);
    cp.size = 1000;
    cp.rows = 300;
    cp.batches = 3;
    cp.bytes_read = 400;
    cp.pos.row_number = 302;
    snprintf(cp.pos.table_key, sizeof cp.pos.table_key, "primary");
    char *plain = di_progress_json(&cp, "running", "file:///d.csv");
    CHECK(plain != NULL && strstr(plain, "finished") == NULL); /* nothing ahead: no member */
    di_segment seg[2] = {{"primary", 402, 502, 100}, {"primary", 602, 702, 99}};
    char *patched = di_progress_patch(plain, 499, 900, 5, seg, 2);
    CHECK(patched != NULL);
    CHECK(strstr(patched, "\"rows_processed\":499") != NULL);
    CHECK(strstr(patched, "\"percentage\":90") != NULL);
    size_t n = strlen(patched) + 32;
    char *rp = malloc(n);
    snprintf(rp, n, "{\"progress\":%s}", patched);
    di_checkpoint_init(&back);
    CHECK_INT(di_checkpoint_parse(&back, rp, &err), 0);
    CHECK_INT(back.rows, 499);
    CHECK_INT(back.batches, 5);
    CHECK_INT(back.bytes_read, 900);
    CHECK_INT(back.pos.row_number, 302); /* the watermark itself is untouched */
    CHECK_INT((long)back.nfinished, 2);
    CHECK_STR(back.finished[1].table, "primary");
    CHECK_INT(back.finished[1].from, 602);
    CHECK_INT(back.finished[1].to, 702);
    CHECK_INT(back.finished[1].rows, 99);
    char *again = di_progress_json(&back, "running", "file:///d.csv"); /* renders them too */
    CHECK(again != NULL && strstr(again, "\"from\":402") != NULL);
    char *cleared = di_progress_patch(patched, 499, 900, 5, NULL, 0);
    CHECK(cleared != NULL && strstr(cleared, "finished") == NULL);
    CHECK(di_progress_patch("{not json", 1, 1, 1, NULL, 0) == NULL);
    free(cleared);
    free(again);
    free(rp);
    free(patched);
    free(plain);
    di_checkpoint_cleanup(&cp);
    di_checkpoint_cleanup(&back);
}

/* test_no_checkpoint: a job that never started has none. */
static void test_no_checkpoint(void) {
    di_checkpoint cp;
    di_error err;
    di_checkpoint_init(&cp);
    CHECK_INT(di_checkpoint_parse(&cp, "{\"source\":\"x\"}", &err), 0);
    CHECK_STR(cp.commit_id, "");
    CHECK_INT(cp.pos.has_point, 0);
    CHECK_INT(di_checkpoint_parse(&cp, "{nope", &err), -1);
    di_checkpoint_cleanup(&cp);
}

/* test_stage: a staged load's names and parts, and a stage state that cannot
 * be (more parts merged than there are) refused rather than trusted. */
static void test_stage(void) {
    char t[80];
    di_stage_table("0b6f3c1e-9a2d-4c8e-b1f0-7d5e4a3c2b10", 7, t);
    CHECK_STR(t, "dsa_ingest.stage_0b6f3c1e9a2d4c8eb1f07d5e4a3c2b10_7");
    di_stage_table("0b6f3c1e-9a2d-4c8e-b1f0-7d5e4a3c2b10", -1, t);
    CHECK_STR(t, "dsa_ingest.stage_0b6f3c1e9a2d4c8eb1f07d5e4a3c2b10");
    di_stage_table("x\"; DROP TABLE y; --", 0, t); /* only hex digits make it into a name */
    CHECK_STR(t, "dsa_ingest.stage__0");
    CHECK_INT(di_stage_part("0fff", 16), 0);
    CHECK_INT(di_stage_part("9abc", 16), 9);
    CHECK_INT(di_stage_part("f000", 16), 15);
    CHECK_INT(di_stage_part("f000", 4), 3);
    di_checkpoint cp;
    di_error err;
    di_checkpoint_init(&cp);
    CHECK_INT(di_checkpoint_parse(&cp,
                                  "{\"progress\":{\"checkpoint\":{\"stage\":{\"parts\":16,"
                                  "\"rows_merged\":[16],\"manifest_merged\":[]}}}}",
                                  &err),
              -1);
    CHECK(strstr(err.message, "stage") != NULL);
    di_checkpoint_cleanup(&cp);
}

/* test_settings: defaults, overrides, and junk refused with the variable's name. */
static void test_settings(void) {
    di_settings s;
    di_error err;
    unsetenv("IMPORT_BATCH_SIZE");
    CHECK_INT(di_settings_load(&s, &err), 0);
    CHECK_INT(s.batch_size, 10000);
    CHECK_INT(s.chunk_size, 1048576);
    CHECK_INT(s.stage_min_bytes, 32L << 20);
    setenv("IMPORT_BATCH_SIZE", "250", 1);
    CHECK_INT(di_settings_load(&s, &err), 0);
    CHECK_INT(s.batch_size, 250);
    setenv("IMPORT_BATCH_SIZE", "25x", 1);
    CHECK_INT(di_settings_load(&s, &err), -1);
    CHECK_INT(err.cls, DI_ERR_CONFIG);
    CHECK(strstr(err.message, "IMPORT_BATCH_SIZE") != NULL);
    setenv("IMPORT_BATCH_SIZE", "0", 1);
    CHECK_INT(di_settings_load(&s, &err), -1);
    unsetenv("IMPORT_BATCH_SIZE");
}

/* test_error_format: the message names object, table, row and byte. */
static void test_error_format(void) {
    di_error e;
    char out[512];
    di_error_clear(&e);
    di_error_at(&e, DI_ERR_INPUT, "primary", 5, 1234, "record has %d fields, expected %d", 4, 3);
    di_error_format(&e, "https://h/x.csv", out, sizeof out);
    CHECK_STR(out, "https://h/x.csv: table primary, row 5 (byte 1234): record has 4 fields, "
                   "expected 3");
    CHECK_INT(di_exit_code(&e), 1);
    di_error_set(&e, DI_ERR_TRANSIENT, "gave up");
    CHECK_INT(di_exit_code(&e), 3);
}

int main(void) {
    test_base64();
    test_roundtrip();
    test_finished();
    test_no_checkpoint();
    test_stage();
    test_settings();
    test_error_format();
    return check_report();
}
