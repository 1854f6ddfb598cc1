/* test_json_arena.c - jansson values parsed in a thread's arena, and everything else as usual. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "json_arena.h"

static const char *DOC = "[{\"call_id\":\"a\",\"billsec\":12,\"qos\":{\"mos\":4.3}},"
                         "{\"call_id\":\"b\",\"billsec\":0,\"meta_json\":{\"k\":[1,2,3]}}]";

Test(json_arena, values_parsed_in_the_arena_read_back_and_release)
{
    cr_assert_eq(json_arena_install(), 0);
    cr_assert_eq(json_arena_thread_init(64 * 1024), 0);
    for (int round = 0; round < 1000; round++) {
        json_arena_enter();
        json_t *doc = json_loads(DOC, 0, NULL);
        json_arena_leave();
        cr_assert_not_null(doc);
        cr_assert_str_eq(json_string_value(json_object_get(json_array_get(doc, 1), "call_id")),
                         "b");
        cr_assert_eq(json_integer_value(json_object_get(json_array_get(doc, 0), "billsec")), 12);
        json_decref(doc);
        json_arena_reset();
    }
    cr_assert_eq(json_arena_thread_init(0), 0);
}

Test(json_arena, values_made_outside_the_arena_outlive_a_reset)
{
    cr_assert_eq(json_arena_install(), 0);
    cr_assert_eq(json_arena_thread_init(64 * 1024), 0);
    json_t *kept = json_pack("{s:s}", "field", "billsec"); /* not entered: malloc */
    json_arena_enter();
    json_t *doc = json_loads(DOC, 0, NULL);
    json_arena_leave();
    json_decref(doc);
    json_arena_reset();
    /* Overwrite the arena with a new parse: 'kept' must not be in it. */
    json_arena_enter();
    doc = json_loads("{\"field\":\"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\"}", 0, NULL);
    json_arena_leave();
    cr_assert_str_eq(json_string_value(json_object_get(kept, "field")), "billsec");
    json_decref(doc);
    json_decref(kept);
    cr_assert_eq(json_arena_thread_init(0), 0);
}

Test(json_arena, a_document_larger_than_the_arena_falls_back_to_malloc)
{
    cr_assert_eq(json_arena_install(), 0);
    cr_assert_eq(json_arena_thread_init(256), 0);
    char big[8192];
    size_t n = 0;
    n += (size_t)snprintf(big + n, sizeof(big) - n, "[");
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "%s{\"i\":%d}", i ? "," : "", i);
    snprintf(big + n, sizeof(big) - n, "]");
    json_arena_enter();
    json_t *doc = json_loads(big, 0, NULL);
    json_arena_leave();
    cr_assert_eq(json_array_size(doc), 200);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(doc, 199), "i")), 199);
    json_decref(doc);
    json_arena_reset();
    cr_assert_eq(json_arena_thread_init(0), 0);
}
