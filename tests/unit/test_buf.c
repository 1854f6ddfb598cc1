/* test_buf.c - the growable byte buffer: appends, printf growth, limits, reset and steal. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

Test(buf, append_keeps_bytes_in_order_and_nul_terminated)
{
    cdr_buf b = {0};
    cr_assert_eq(cdr_buf_append(&b, "ab", 2), 0);
    cr_assert_eq(cdr_buf_append_str(&b, "cd"), 0);
    cr_assert_eq(cdr_buf_append_char(&b, 'e'), 0);
    cr_assert_eq(cdr_buf_append(&b, "x\0y", 3), 0);
    cr_assert_eq(b.len, 8);
    cr_assert_eq(memcmp(b.data, "abcdex\0y", 8), 0);
    cr_assert_eq(b.data[b.len], '\0');
    cdr_buf_free(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
}

Test(buf, printf_grows_past_256_bytes)
{
    cdr_buf b = {0};
    char big[1000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';

    cr_assert_eq(cdr_buf_printf(&b, "head:%d:", 42), 0);
    cr_assert_eq(cdr_buf_printf(&b, "%s|%s", big, "tail"), 0);
    cr_assert_eq(b.len, strlen("head:42:") + 999 + strlen("|tail"));
    cr_assert_eq(strncmp(b.data, "head:42:zzz", 11), 0);
    cr_assert_str_eq(b.data + b.len - 6, "z|tail");
    cr_assert_eq(strspn(b.data + 8, "z"), 999);
    cdr_buf_free(&b);
}

Test(buf, limit_refuses_and_leaves_content_unchanged)
{
    cdr_buf b;
    cdr_buf_init(&b, 10);
    cr_assert_eq(cdr_buf_append_str(&b, "12345678"), 0);

    cr_assert_eq(cdr_buf_append_str(&b, "abc"), -1);
    cr_assert_eq(cdr_buf_printf(&b, "%s", "abc"), -1);
    cr_assert_eq(cdr_buf_printf(&b, "%300s", "x"), -1);
    cr_assert_eq(b.len, 8);
    cr_assert_str_eq(b.data, "12345678");

    cr_assert_eq(cdr_buf_append_str(&b, "90"), 0, "filling exactly up to the limit is allowed");
    cr_assert_str_eq(b.data, "1234567890");
    cr_assert_eq(cdr_buf_append_char(&b, 'x'), -1);
    cr_assert_str_eq(b.data, "1234567890");
    cdr_buf_free(&b);
}

Test(buf, reset_empties_and_allows_reuse)
{
    cdr_buf b = {0};
    cr_assert_eq(cdr_buf_append_str(&b, "hello"), 0);
    cdr_buf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_str_eq(b.data, "");
    cr_assert_eq(cdr_buf_append_str(&b, "again"), 0);
    cr_assert_str_eq(b.data, "again");
    cdr_buf_free(&b);
}

Test(buf, steal_of_empty_buffer_gives_empty_string)
{
    cdr_buf b = {0};
    char *s = cdr_buf_steal(&b);
    cr_assert_not_null(s);
    cr_assert_str_eq(s, "");
    free(s);
}

Test(buf, steal_hands_over_content_and_empties_buffer)
{
    cdr_buf b = {0};
    cr_assert_eq(cdr_buf_printf(&b, "n=%d", 7), 0);
    char *s = cdr_buf_steal(&b);
    cr_assert_str_eq(s, "n=7");
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);

    cr_assert_eq(cdr_buf_append_str(&b, "next"), 0);
    cr_assert_str_eq(b.data, "next");
    cr_assert_str_eq(s, "n=7", "the stolen string is independent of the buffer");
    free(s);
    cdr_buf_free(&b);
}
