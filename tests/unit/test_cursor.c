/* test_cursor.c - the keyset cursor: round trips at the edges and each refusal. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cursor.h"

static void round_trip(cdr_time ts, const char *call_id)
{
    cursor_pos in = {.start_ts = ts}, out;
    char text[CURSOR_MAX], err[128] = "";
    snprintf(in.call_id, sizeof(in.call_id), "%s", call_id);
    cr_assert_eq(cursor_encode(&in, text, sizeof(text)), 0);
    cr_assert_eq(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                 strlen(text), "%s", text);
    memset(&out, 0x55, sizeof(out));
    cr_assert_eq(cursor_decode(text, &out, err, sizeof(err)), 0, "%s: %s", text, err);
    cr_assert_eq(out.start_ts, ts);
    cr_assert_str_eq(out.call_id, call_id);
}

static void decode_fails(const char *text, const char *want)
{
    cursor_pos pos;
    char err[128] = "";
    cr_assert_eq(cursor_decode(text, &pos, err, sizeof(err)), -1, "%s was accepted", text);
    cr_assert_str_eq(err, want, "%s", text);
}

Test(cursor, round_trips)
{
    round_trip(INT64_C(1761815525123456), "a84b4c76e66710@pbx.example.it");
    round_trip(0, "x");
    round_trip(-1, "before-the-epoch");
    round_trip(INT64_C(-62135596800000000), "year-1");
    round_trip(INT64_MAX, "max");
    round_trip(INT64_MIN, "min");
    round_trip(1, "with spaces, /slashes/ and +plus= \xc3\xa8");
}

Test(cursor, call_id_of_255_bytes_fits_the_buffer)
{
    char id[256];
    for (size_t n = 1; n <= 255; n++) {
        memset(id, 'a' + (int)(n % 26), n);
        id[n] = '\0';
        round_trip(INT64_C(1761815525000000) + (int64_t)n, id);
    }
    cursor_pos pos = {.start_ts = 5};
    memset(pos.call_id, 'z', 255);
    pos.call_id[255] = '\0';
    char text[CURSOR_MAX];
    cr_assert_eq(cursor_encode(&pos, text, sizeof(text)), 0);
    cr_assert_eq(strlen(text), CURSOR_MAX - 1);
}

Test(cursor, encode_refuses_a_small_buffer)
{
    cursor_pos pos = {.start_ts = 5, .call_id = "abc"};
    char text[CURSOR_MAX];
    /* 12 bytes are 16 characters and the NUL. */
    cr_assert_eq(cursor_encode(&pos, text, 16), -1);
    cr_assert_eq(cursor_encode(&pos, text, 17), 0);
    cr_assert_eq(strlen(text), 16);
}

Test(cursor, encode_is_stable)
{
    /* The wire form is a contract between releases: version 1, big-endian start_ts, call_id. */
    cursor_pos pos = {.start_ts = 1, .call_id = "A"};
    char text[CURSOR_MAX];
    cr_assert_eq(cursor_encode(&pos, text, sizeof(text)), 0);
    cr_assert_str_eq(text, "AQAAAAAAAAABQQ");
}

Test(cursor, refusals)
{
    decode_fails("", "cursor: unknown version");
    decode_fails("AQAAAAAAAAABQQ==", "cursor: not base64url");
    decode_fails("AQAAAAAAAAAB+Q", "cursor: not base64url");
    decode_fails("AQAAAAAAAAAB/Q", "cursor: not base64url");
    decode_fails("AQAAAAAAAAABQ Q", "cursor: not base64url");
    /* A length no whole number of bytes encodes to. */
    decode_fails("AQAAAAAAAAABQ", "cursor: malformed");
    /* Stray bits after the last byte. */
    decode_fails("AQAAAAAAAAABQR", "cursor: malformed");
    /* Version 2. */
    decode_fails("AgAAAAAAAAABQQ", "cursor: unknown version");
    decode_fails("AA", "cursor: unknown version");
    /* A version and start_ts but no call_id, or less. */
    decode_fails("AQAAAAAAAAAB", "cursor: truncated");
    decode_fails("AQAA", "cursor: truncated");
    /* A NUL inside the call_id. */
    decode_fails("AQAAAAAAAAABQQBB", "cursor: malformed call_id");
    /* Longer than any cursor. */
    char text[CURSOR_MAX + 4];
    memset(text, 'A', CURSOR_MAX + 2);
    text[0] = 'A';
    text[1] = 'Q';
    text[CURSOR_MAX + 2] = '\0';
    decode_fails(text, "cursor: malformed");
}
